// The bytes of one ranged GET on their way into the partial file (range-socket.mjs, and
// range-worker.mjs for what node:http fetches): they gather in page-aligned memory, a slab, and each
// full slab is written past the page cache where it can be (packages/shared/src/direct-io.mjs says
// why) while the next one fills. Where the download has a hash window and the slab's pages are
// within its reach, the slab is the window's own memory, up to 4 MiB of it (hash-window.mjs,
// claim()): the socket reads into it, the file is written from it and the hash takes it from
// there, with no copy in between; otherwise it is a pooled megabyte, whose pages are copied into
// the window once written. Pages new to a process cost a fault each (10 µs on a virtual machine),
// so memory that is not the window's is memory a pull pays for twice. Writes are asynchronous so
// that the download thread goes on reading its other sockets while the disk works (written
// synchronously, the thread spent the disk's whole time blocked), and one at a time per range so
// that progress is reported in the order of the file: a part's Completed count means "the first
// this many bytes are in the file", which the sha256 that follows the file relies on. A slab that
// fills while the one before is still being written waits; `backlogged` then tells the reader to
// pause its socket until `onRoom` is called.

import { closeSync, constants, openSync } from "node:fs";
import { BufferPool } from "@corral/shared/buffer-pool";
import { openDirectSync, toBoundary, writeSlabFd, type Slab } from "@corral/shared/direct-io";
import { HashWindow } from "@corral/shared/hash-window";

/**
 * A slab in the window. A virtual disk takes at most 254 pages a request (`max_segments`), so a
 * megabyte written from pages that are not contiguous went as two requests, one of them two pages;
 * written 4 MiB at a time, a pull over loopback made a third fewer write requests and, in eight
 * alternating pairs on a 2-core virtual machine, took 1.60-2.03 s against 1.86-2.12 (README,
 * "Fewer, larger writes"). The window's memory costs nothing more for it.
 */
const WINDOW_SLAB_BYTES = 4 << 20;
/** A slab out of the pool: memory of its own, so kept small. */
const SLAB_BYTES = 1 << 20;

/** Shared by every range in flight, at most one filling and two waiting or written per range. */
const slabs = new BufferPool(SLAB_BYTES, 48, { pageAligned: true });

/** A slab and where its memory came from: the pool's (given back) or the window's (held once written). */
interface Pending extends Slab {
  inWindow: boolean;
}

export class SlabWriter {
  /** The file, and the file again opened with O_DIRECT where it can be. */
  private readonly cached: number;
  private readonly direct: number | undefined;
  /** Where written pages also go, for the download's sha256 (hash-window.mjs). */
  private readonly window: HashWindow | undefined;
  private slab: Buffer;
  private inWindow = false;
  private at: number;
  private filled = 0;
  /** The first slab fills only up to a page boundary, so that the ones after it are aligned. */
  private room = 0;
  private readonly queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  private failure: unknown;
  private closed = false;

  /**
   * Writes into the file at `path` from `at` on; its descriptors stay open until close().
   * `onWritten(n)`: the next `n` bytes are in the file. `onRoom`: a backlog cleared. `onError`: a
   * write failed; nothing more is written. `window`: the hash window's memory, if the download
   * has one.
   */
  constructor(
    path: string,
    at: number,
    private readonly events: { onWritten: (n: number) => void; onRoom: () => void; onError: (e: unknown) => void; window?: SharedArrayBuffer | undefined },
  ) {
    this.cached = openSync(path, "r+");
    try {
      this.direct = openDirectSync(path, constants.O_WRONLY);
    } catch (e) {
      closeSync(this.cached);
      throw e;
    }
    this.window = events.window ? new HashWindow(events.window) : undefined;
    this.at = at;
    this.slab = this.nextSlab();
  }

  /** The memory for the bytes from `this.at`: window slots where it can, else a pool slab. */
  private nextSlab(): Buffer {
    const claimed = this.window?.claim(this.at, WINDOW_SLAB_BYTES);
    this.inWindow = claimed !== undefined;
    const slab = claimed ?? slabs.take();
    this.room = claimed ? claimed.length : toBoundary(this.at) || slab.length;
    return slab;
  }

  /** Where the next bytes go, to be read into directly (then advance()); never empty. */
  space(): Buffer {
    return this.slab.subarray(this.filled, this.room);
  }

  /** `n` bytes were put at the start of space(). */
  advance(n: number): void {
    this.filled += n;
    if (this.filled === this.room) this.seal();
  }

  /** A full slab waits behind the one being written: the reader should stop until onRoom. */
  get backlogged(): boolean {
    return this.queue.length > 0;
  }

  /** Takes the bytes (copied: `bytes` may be reused once this returns). */
  add(bytes: Buffer): void {
    for (let off = 0; off < bytes.length; ) {
      const n = Math.min(bytes.length - off, this.room - this.filled);
      // fill() with a buffer of the same length is a memcpy, also into the window's shared memory
      // (hash-window.mjs, put(), says why copy() is not).
      this.slab.fill(bytes.subarray(off, off + n), this.filled, this.filled + n);
      off += n;
      this.advance(n);
    }
  }

  /** Writes what is left; resolves when every byte added is in the file. */
  async flush(): Promise<void> {
    this.seal();
    while (this.writing) await this.writing;
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Drops what is not written yet, waits for the write in flight and closes the file (only then,
   * so that a descriptor's number cannot be reused under a write). Call once.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.queue.splice(0)) if (!s.inWindow) slabs.give(s.buf);
    while (this.writing) await this.writing.catch(() => undefined);
    if (!this.inWindow) slabs.give(this.slab);
    try {
      closeSync(this.cached);
    } finally {
      if (this.direct !== undefined) closeSync(this.direct);
    }
  }

  private seal(): void {
    if (this.filled === 0 || this.closed) return;
    this.queue.push({ buf: this.slab, n: this.filled, at: this.at, inWindow: this.inWindow });
    this.at += this.filled;
    this.filled = 0;
    this.slab = this.nextSlab();
    this.next();
  }

  private next(): void {
    if (this.writing || this.closed || this.failure !== undefined) return;
    const s = this.queue.shift();
    if (!s) return;
    const release = (): void => {
      if (!s.inWindow) slabs.give(s.buf);
    };
    this.writing = writeSlabFd(this.cached, this.direct, s).then(
      () => {
        this.writing = undefined;
        if (this.closed) return release();
        // Before the progress that lets the hash reach these bytes.
        if (s.inWindow) this.window?.hold(s.at, s.n);
        else this.window?.put(s.buf, s.n, s.at);
        release();
        this.events.onWritten(s.n);
        const wasBacklogged = this.queue.length > 0;
        this.next();
        if (wasBacklogged && this.queue.length === 0) this.events.onRoom();
      },
      (e: unknown) => {
        release();
        this.writing = undefined;
        this.failure = e;
        if (!this.closed) this.events.onError(e);
      },
    );
  }
}
