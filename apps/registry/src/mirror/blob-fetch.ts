// One download of a blob from an upstream, shared by every client that wants it while it runs
// (docs/protocol.md, "Mirrors"). The bytes go to a spool file as they arrive, hashed on the way;
// readers follow the file, each at its own range, so the first client does not wait for the whole
// blob and late joiners get what has arrived so far, then the rest. The blob's last byte is held
// back from every reader until the digest has verified and the blob is stored: a client whose blob
// turns out corrupt sees its connection cut before its answer is complete, never a clean end.

import { createHash, randomUUID } from "node:crypto";
import { mkdir, open, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { digestHex } from "@corral/shared/digest";
import { UpstreamError, type UpstreamBlob } from "./upstream-client.ts";

/** A blob that moves no byte for this long is given up (and fetched again by the next pull). */
const STALL_MS = 60_000;
/** Largest read handed to a client at once. */
const READ_BYTES = 1 << 20;

/** The upstream does not have the blob its manifest names. */
export class UpstreamBlobUnknown extends Error {
  constructor(readonly digest: string) {
    super(`the upstream does not have blob ${digest}`);
    this.name = "UpstreamBlobUnknown";
  }
}

export interface BlobFetchOptions {
  digest: string;
  /** From the manifest; the upstream must send exactly this many bytes. */
  size: number;
  spoolDir: string;
  /** Opens the upstream's answer; undefined when the upstream does not have the blob. */
  open(signal: AbortSignal): Promise<UpstreamBlob | undefined>;
  /** Stores the verified spool file; the fetch is done (and the last byte released) once it resolves. */
  commit(path: string): Promise<void>;
}

type State = "running" | "done" | "failed";

export class BlobFetch {
  readonly digest: string;
  readonly size: number;
  /** Resolves once the upstream answered with the bytes; rejects when it failed before that. */
  readonly started: Promise<void>;
  /** Resolves once the blob is verified and stored; rejects when the fetch failed. */
  readonly finished: Promise<void>;
  private received = 0;
  private state: State = "running";
  private error: Error | undefined;
  private waiters: Array<() => void> = [];
  private readers = 0;
  private file: FileHandle | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly opts: BlobFetchOptions) {
    this.digest = opts.digest;
    this.size = opts.size;
    let markStarted!: () => void;
    let failStart!: (e: Error) => void;
    this.started = new Promise<void>((resolve, reject) => {
      markStarted = resolve;
      failStart = reject;
    });
    this.finished = this.run(markStarted).then(
      () => {
        this.state = "done";
        this.wake();
        this.release();
      },
      (e: Error) => {
        this.state = "failed";
        this.error = e;
        failStart(e);
        this.abort.abort(e);
        this.wake();
        this.release();
        throw e;
      },
    );
    // Both are awaited by whoever needs them; an unobserved failure is not a crash.
    this.started.catch(() => {});
    this.finished.catch(() => {});
  }

  /** How many bytes have arrived (for progress lines). */
  get bytesReceived(): number {
    return this.received;
  }

  /** Stops the download (shutdown); readers are cut off. */
  cancel(reason: string): void {
    this.abort.abort(new UpstreamError(reason));
  }

  private async run(markStarted: () => void): Promise<void> {
    const { digest, size, spoolDir } = this.opts;
    await mkdir(spoolDir, { recursive: true });
    const path = join(spoolDir, `${digestHex(digest)}.${randomUUID()}.part`);
    this.file = await open(path, "w+");
    try {
      const up = await this.opts.open(this.abort.signal);
      if (!up) throw new UpstreamBlobUnknown(digest);
      if (up.length !== undefined && up.length !== size) {
        await up.body.cancel().catch(() => {});
        throw new UpstreamError(`the upstream sends blob ${digest} as ${up.length} bytes; its manifest says ${size}`);
      }
      markStarted();
      await this.receive(up);
      await this.opts.commit(path);
    } finally {
      // Readers keep reading through the open descriptor; the name goes now.
      await unlink(path).catch(() => {});
    }
  }

  private async receive(up: UpstreamBlob): Promise<void> {
    const { digest, size } = this.opts;
    const hash = createHash("sha256");
    const stall = setTimeout(() => this.abort.abort(new UpstreamError(`blob ${digest} moved no byte for ${STALL_MS / 1000} s`)), STALL_MS);
    stall.unref();
    const reader = up.body.getReader();
    const onAbort = (): void => void reader.cancel().catch(() => {});
    this.abort.signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw new UpstreamError(`the upstream broke off blob ${digest} after ${this.received} of ${size} bytes (${(e as { cause?: Error }).cause?.message ?? (e as Error).message})`);
        }
        if (this.abort.signal.aborted) throw this.abort.signal.reason as Error;
        if (chunk.done) break;
        const bytes = chunk.value;
        if (this.received + bytes.length > size) throw new UpstreamError(`the upstream sends more than the ${size} bytes blob ${digest} has; nothing was kept`);
        await this.file!.write(bytes, 0, bytes.length, this.received);
        hash.update(bytes);
        this.received += bytes.length;
        stall.refresh();
        this.wake();
      }
    } finally {
      clearTimeout(stall);
      this.abort.signal.removeEventListener("abort", onAbort);
    }
    if (this.received !== size) throw new UpstreamError(`the upstream broke off blob ${digest} after ${this.received} of ${size} bytes`);
    const actual = `sha256:${hash.digest("hex")}`;
    if (actual !== digest) throw new UpstreamError(`the upstream sent bytes for blob ${digest} whose digest is ${actual}; nothing was kept`);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private changed(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  /** Closes the spool file once the fetch is over and nobody reads it. */
  private release(): void {
    if (this.state === "running" || this.readers > 0 || !this.file) return;
    const f = this.file;
    this.file = undefined;
    void f.close().catch(() => {});
  }

  /**
   * The inclusive range `start`–`end` of the blob as it arrives. The stream fails (and the client's
   * connection with it) when the fetch fails; the blob's last byte comes only once it is stored.
   * Undefined when the download is over and its spool file closed: the blob is in the store.
   */
  reader(start: number, end: number): Readable | undefined {
    if (!this.file && this.state === "done") return undefined;
    this.readers++;
    let released = false;
    const stream = Readable.from(this.bytes(start, end), { objectMode: false, highWaterMark: READ_BYTES });
    stream.once("close", () => {
      if (released) return;
      released = true;
      this.readers--;
      this.release();
    });
    return stream;
  }

  private async *bytes(start: number, end: number): AsyncGenerator<Buffer> {
    let pos = start;
    while (pos <= end) {
      if (this.state === "failed") throw this.error ?? new UpstreamError("the upstream download failed");
      const ready = this.state === "done" ? this.size : Math.min(this.received, this.size - 1);
      if (pos >= ready) {
        await this.changed();
        continue;
      }
      const n = Math.min(ready, end + 1, pos + READ_BYTES) - pos;
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await this.file!.read(buf, 0, n, pos);
      if (bytesRead === 0) throw new UpstreamError(`blob ${this.digest}: the spool file ended early`);
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  }
}
