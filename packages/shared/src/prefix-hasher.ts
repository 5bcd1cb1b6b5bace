// The sha256 of a file that is still being written front to back (or whose front is complete while
// later parts arrive): the hash follows the finished prefix, so verifying costs little once the
// last byte is in. Large files are hashed on a worker thread, which lets hashing use a core of its
// own instead of competing with the network and disk work on the main thread; small ones are
// hashed here, where starting a thread would cost more than the hash.

import { open, type FileHandle } from "node:fs/promises";
import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { HashWindow } from "./hash-window.mjs";

const WORKER = new URL("./prefix-hash-worker.mjs", import.meta.url);

/** Below this a worker thread is not worth starting. */
const THREAD_MIN_BYTES = 64 << 20;
/** The worker is told about progress in steps of at least this much. */
const STEP = 8 << 20;

export interface PrefixHasher {
  /** The first `upTo` bytes of the file are final. */
  follow(upTo: number): void;
  /** Hashes the rest up to `total` and returns "sha256:<hex>". */
  finish(total: number): Promise<string>;
  /**
   * Stops early (a failed download); safe to call after finish. Only once nothing writes into the
   * window any more: it is kept for the next download.
   */
  close(): Promise<void>;
  /**
   * Memory for hash-window.mjs, where whoever writes the file puts the pages it wrote, so that the
   * hash takes them from there instead of reading them back; absent for small files.
   */
  readonly window?: SharedArrayBuffer;
  /** The thread that hashes the file; absent for small files, hashed on the caller's thread. */
  readonly threadId?: number;
}

/** How the file arrives: in parts of `partSize`, `streams` of them side by side (hash-window.mjs maps the window's memory in that order). */
export interface ArrivalOrder {
  partSize?: number | undefined;
  streams?: number | undefined;
}

export async function prefixHasher(path: string, total: number, order: ArrivalOrder = {}): Promise<PrefixHasher> {
  return total >= THREAD_MIN_BYTES ? new ThreadHasher(path, total, order) : new LocalHasher(await open(path, "r"));
}

/** One thing kept for a minute for whoever asks next; its timer keeps no process alive. */
class KeptAWhile<T> {
  private kept: { value: T; timer: NodeJS.Timeout } | undefined;

  /** `release` is called on a value let go unused: its minute passed, or another took its place. */
  constructor(private readonly release: (value: T) => void = () => undefined) {}

  /** The kept value, if `fits` it; it is no longer kept then. */
  take(fits: (value: T) => boolean = () => true): T | undefined {
    const k = this.kept;
    if (!k || !fits(k.value)) return undefined;
    clearTimeout(k.timer);
    this.kept = undefined;
    return k.value;
  }

  keep(value: T): void {
    const before = this.kept;
    if (before) {
      clearTimeout(before.timer);
      this.release(before.value);
    }
    const timer = setTimeout(() => {
      if (this.kept?.value !== value) return;
      this.kept = undefined;
      this.release(value);
    }, 60_000);
    timer.unref();
    this.kept = { value, timer };
  }

  /** Lets `value` go without releasing it, if it is the one kept. */
  forget(value: T): void {
    if (this.kept?.value !== value) return;
    clearTimeout(this.kept.timer);
    this.kept = undefined;
  }
}

/**
 * The window of the last download, kept a while for the next one: its pages are mapped already,
 * and mapping 128 MiB anew costs a pull 0.3 CPU-seconds and its first 100 MB half their speed on a
 * virtual machine (docs/architecture.md, "Data flow: a pull"). One is kept, for a minute. Every
 * window is made at the full size, whatever the file's, so that the next download can take it
 * whatever its own size (a 100 MB blob's window would not serve a 1 GB one); a file smaller than
 * the window maps only the pages it uses (prefix-hash-worker.mjs). Kept once no thread uses it any
 * more (its download's writes and hash have ended).
 */
const spareWindow = new KeptAWhile<SharedArrayBuffer>();

/**
 * The hash thread of the last download that ended well, kept a while for the next one: starting a
 * thread costs a JavaScript environment of its own and some 6,000 page faults, on every pull
 * (docs/architecture.md, "Data flow: a pull"). One is kept, for a minute, unreferenced so that it
 * keeps nothing alive.
 */
const spareThread = new KeptAWhile<Worker>((w) => void w.terminate());

function takeThread(): Worker {
  const kept = spareThread.take();
  if (kept) {
    kept.ref();
    return kept;
  }
  const worker = new Worker(WORKER);
  // A kept thread has no file's listeners: one that fails or ends while kept is no longer kept.
  const drop = (): void => spareThread.forget(worker);
  worker.on("error", drop);
  worker.on("exit", drop);
  return worker;
}

class ThreadHasher implements PrefixHasher {
  private readonly worker: Worker;
  readonly window: SharedArrayBuffer;
  private closed = false;
  /** The thread answered this file's digest and holds nothing of it: it may serve the next file. */
  private reusable = false;
  private sent = 0;
  private failure: Error | undefined;
  private result: ((m: { digest?: string; error?: string }) => void) | undefined;
  private readonly onMessage = (m: { digest?: string; error?: string }): void => {
    if (this.result) this.result(m);
    else if (m.error) this.failure = new Error(m.error);
  };
  private readonly onError = (e: Error): void => {
    this.failure = e;
    this.result?.({ error: e.message });
  };

  constructor(path: string, total: number, order: ArrivalOrder) {
    this.window = spareWindow.take((memory) => HashWindow.reuse(memory, total)) ?? HashWindow.create();
    this.worker = takeThread();
    this.worker.on("message", this.onMessage);
    this.worker.on("error", this.onError);
    this.worker.postMessage({ start: { path, window: this.window, total, partSize: order.partSize, streams: order.streams } });
  }

  /** The thread hashing this file (one thread serves downloads one after another). */
  get threadId(): number {
    return this.worker.threadId;
  }

  follow(upTo: number): void {
    if (upTo - this.sent < STEP) return;
    this.sent = upTo;
    this.worker.postMessage({ upTo });
  }

  async finish(total: number): Promise<string> {
    if (this.failure) {
      await this.close();
      throw this.failure;
    }
    const m = await new Promise<{ digest?: string; error?: string }>((resolve) => {
      this.result = resolve;
      this.worker.postMessage({ upTo: total, finish: true });
    });
    this.reusable = m.digest !== undefined;
    await this.close();
    if (m.error !== undefined || m.digest === undefined) throw new Error(`hashing the download: ${m.error ?? "no digest"}`);
    return m.digest;
  }

  /**
   * Whoever writes into the window must be done with it first: it goes to the next download. So
   * does the thread when it has answered this file's digest; one stopped half way ends.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.worker.off("message", this.onMessage);
    this.worker.off("error", this.onError);
    if (this.reusable) {
      this.worker.unref();
      spareThread.keep(this.worker);
    } else await this.worker.terminate();
    spareWindow.keep(this.window);
  }
}

/** Hashes on this thread, one read at a time, never two reads at once. */
class LocalHasher implements PrefixHasher {
  private readonly hash = createHash("sha256");
  private pos = 0;
  private target = 0;
  private running: Promise<void> | undefined;
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private closed = false;
  private failure: unknown;

  constructor(private readonly fh: FileHandle) {}

  follow(upTo: number): void {
    this.target = Math.max(this.target, upTo);
    this.running ??= this.run()
      .catch((e: unknown) => void (this.failure ??= e))
      .finally(() => (this.running = undefined));
  }

  private async run(): Promise<void> {
    while (this.pos < this.target && !this.closed) {
      const { bytesRead } = await this.fh.read(this.buf, 0, Math.min(this.buf.length, this.target - this.pos), this.pos);
      if (bytesRead === 0) throw new Error(`the file ends after ${this.pos} bytes, ${this.target} were expected`);
      this.hash.update(this.buf.subarray(0, bytesRead));
      this.pos += bytesRead;
    }
  }

  async finish(total: number): Promise<string> {
    while (this.running) await this.running;
    try {
      if (this.failure !== undefined) throw this.failure;
      this.target = total;
      await this.run();
    } finally {
      await this.close();
    }
    return `sha256:${this.hash.digest("hex")}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.running) await this.running;
    await this.fh.close();
  }
}
