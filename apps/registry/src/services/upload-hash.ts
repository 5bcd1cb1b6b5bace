// The running sha256 of an upload session, worked out on a thread of its own (docs/architecture.md,
// "Data flow: a push, on the registry"). Receiving a push keeps the main thread busy: Node's HTTP
// parser, copying into the store's buffers and queueing them for the disk, and the hash beside them
// took about 45 % of it; on a thread of its own the hash runs on the second core meanwhile.
//
// Bytes in shared memory (the filesystem store's buffers, BufferPool's `shared`) are hashed where
// they lie: update() returns a promise, and the buffer must not change until it settles. Other
// bytes (the S3 driver's, which come straight from the socket) are copied into a megabyte at a
// time and handed over whole. One thread for the process: hashing is sequential within an upload,
// and a second core is what a small machine has to give it. When the thread fails, its sessions lose their running hash and the
// final PUT hashes the stored bytes instead, as it does for a session another process received.

import { Worker } from "node:worker_threads";

const WORKER = new URL("./upload-hash-worker.mjs", import.meta.url);
/** Copied bytes are handed to the thread in buffers of this size. */
const COPY = 1 << 20;

export interface RunningHash {
  /**
   * Adds bytes. A promise returned (it never rejects) settles once the thread hashed them: until
   * then `bytes` stay unchanged (shared bytes are hashed where they lie) and the caller holds back
   * (the filesystem store's disk queue, the S3 driver's stream), so that what waits for the thread
   * stays bounded.
   */
  update(bytes: Buffer): Promise<void> | undefined;
  /** "sha256:<hex>" of every byte added; rejects when the thread failed meanwhile. The hash is spent. */
  digest(): Promise<string>;
  /** Forgets the hash (an upload that failed or went away). */
  discard(): void;
}

interface Waiter {
  resolve: (digest?: string) => void;
  reject: (e: Error) => void;
}

interface HashThread {
  worker: Worker;
  /** Answers awaited, by ack number. */
  waiting: Map<number, Waiter>;
  failed?: Error;
  /** Ended by stopHashThread, which is no failure to tell. */
  stopping?: boolean;
}

/** The one thread, started with the first hash and started again after a failure. */
let thread: HashThread | undefined;
const failureListeners = new Set<(e: Error) => void>();

/**
 * Calls `fn` when the thread fails (`serve` logs it: until the next session starts another thread,
 * the final PUTs read their uploads back); returns what stops it.
 */
export function onHashThreadFailure(fn: (e: Error) => void): () => void {
  failureListeners.add(fn);
  return () => void failureListeners.delete(fn);
}
let nextAck = 0;
let nextHandle = 0;

function hashThread(): HashThread {
  if (thread && !thread.failed) return thread;
  const worker = new Worker(WORKER);
  const t: HashThread = { worker, waiting: new Map() };
  const fail = (e: Error): void => {
    if (t.failed) return;
    t.failed = e;
    for (const w of t.waiting.values()) w.reject(e);
    t.waiting.clear();
    if (!t.stopping) for (const fn of failureListeners) fn(e);
  };
  worker.on("message", (m: { ack: number; digest?: string }) => {
    const w = t.waiting.get(m.ack);
    t.waiting.delete(m.ack);
    if (t.waiting.size === 0) worker.unref();
    w?.resolve(m.digest);
  });
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`the upload hash thread ended (exit code ${code})`)));
  // The thread keeps the process alive only while someone waits for an answer from it (after the
  // listeners: a "message" listener refs it again).
  worker.unref();
  thread = t;
  return t;
}

/** Posts `message` and answers what the thread answers to it; rejects when the thread fails first. */
function ask(t: HashThread, message: object, transfer: ArrayBuffer[] = []): Promise<string | undefined> {
  const ack = nextAck++;
  return new Promise((resolve, reject) => {
    if (t.waiting.size === 0) t.worker.ref();
    t.waiting.set(ack, { resolve, reject });
    t.worker.postMessage({ ...message, ack }, transfer);
  });
}

/** Settles when `p` does, and never rejects: a thread that failed holds nobody back. */
const settled = (p: Promise<unknown>): Promise<void> =>
  p.then(
    () => undefined,
    () => undefined,
  );

/**
 * Ends the thread; the sessions it hashed lose their running hash, the next hash starts another.
 * For tests, which check what happens to an upload whose thread failed; `asFailure` tells the
 * failure listeners, as a thread that failed on its own does.
 */
export async function stopHashThread(opts: { asFailure?: boolean } = {}): Promise<void> {
  const t = thread;
  thread = undefined;
  if (t && !opts.asFailure) t.stopping = true;
  await t?.worker.terminate();
}

export function startHash(): RunningHash {
  const t = hashThread();
  const h = nextHandle++;
  let copy: Buffer | undefined;
  let filled = 0;
  let done = false;
  /** Discarded, not spent by digest(): updates are ignored. */
  let discarded = false;
  /** Hands the copied bytes to the thread; settles once it hashed them. */
  const handOver = (): Promise<void> | undefined => {
    if (!copy || filled === 0) return undefined;
    const bytes = new Uint8Array(copy.buffer as ArrayBuffer, copy.byteOffset, filled);
    copy = undefined;
    filled = 0;
    // Transferred, not copied again: the thread owns it from here.
    return settled(ask(t, { op: "update", h, bytes }, [bytes.buffer as ArrayBuffer]));
  };
  return {
    update(bytes) {
      // A chunk that failed discards its hash while its body may still be streaming through the
      // store (the S3 driver's transform goes on until the request ends): those late bytes are
      // dropped here. Thrown inside the stream, an error would end the process.
      if (discarded) return undefined;
      if (done) throw new Error("update of a spent upload hash");
      if (t.failed || bytes.length === 0) return undefined;
      if (bytes.buffer instanceof SharedArrayBuffer) {
        // Copied bytes before these, in order; the answer to these comes after theirs.
        void handOver();
        return settled(ask(t, { op: "update", h, bytes }));
      }
      // A megabyte handed over makes the caller wait for its hash, so that what waits for the
      // thread stays bounded however fast the bytes come.
      let handed: Promise<void> | undefined;
      for (let off = 0; off < bytes.length; ) {
        copy ??= Buffer.allocUnsafeSlow(COPY);
        const n = bytes.copy(copy, filled, off);
        filled += n;
        off += n;
        if (filled === COPY) handed = handOver();
      }
      return handed;
    },
    async digest() {
      if (done) throw new Error("digest of a spent upload hash");
      done = true;
      if (t.failed) throw t.failed;
      void handOver();
      return (await ask(t, { op: "digest", h }))!;
    },
    discard() {
      if (done) return;
      done = true;
      discarded = true;
      copy = undefined;
      if (!t.failed) t.worker.postMessage({ op: "drop", h });
    },
  };
}
