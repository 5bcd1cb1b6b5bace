// The bytes of a download that its sha256 has not reached yet, kept in memory shared by the thread
// that writes the file and the one that hashes it, so that the hash need not read them back from
// the disk. A download's parts arrive side by side and the hash follows the file's finished front
// (prefix-hasher.ts), so most bytes are written before the hash can take them; written past the
// page cache (direct-io.mjs), reading them back costs the disk as much again as writing them (on a
// virtual machine the disk was busy for 1.6 s of a 2.1 s pull of 1 GB with the read-back, 1.1-1.4 s
// without). The window holds the pages just ahead of the hash, WINDOW_BYTES of them: pages further
// ahead are not kept and the hash reads those from the file, so memory stays the same whatever the
// size of the blob.
//
// Layout: one SharedArrayBuffer, the pages' bytes and then one Int32 per page slot, holding the
// number (plus one) of the file page the slot has, an Int32 with the first page the hash has not
// taken yet, and, in the memory's last word, the number of slots. A page goes to slot (page mod
// slots). The writer copies a page only when it lies within the slots ahead of the hash, so it
// never overwrites a page the hash still needs; it stores the slot's tag after its bytes, and the
// hasher reads the tag before them (Atomics order both). Only whole pages are kept. The memory
// starts on a page where it can (direct-io.mjs), so that the writer can receive a stretch of pages
// straight into their slots and write the file from there (claim(), then hold() once written),
// with no copy of its own. Plain JavaScript so that worker threads started without a loader can
// import it; hash-window.d.mts gives its types.

import { alignedSharedMemory, mapPages } from "./direct-io.mjs";

const PAGE = 4096;
/**
 * Enough for what the streams of a pull have in flight ahead of the hash on a fast link (4-8 parts
 * of 16 MiB): with 64 MiB a third to four fifths of a 1 GB pull was still read back.
 */
const WINDOW_BYTES = 128 << 20;
/** Page numbers past what an Int32 tag holds (files over 8 TiB) are left to the file. */
const MAX_PAGE = 0x7ffffffe;

/** The slots of a window for a file of `bytes` at most. */
const slotsFor = (bytes) => Math.max(1, Math.floor(Math.min(bytes, WINDOW_BYTES) / PAGE));

export class HashWindow {
  /** A new window's memory (for a file of `bytes` at most), to hand to both threads. */
  static create(bytes = WINDOW_BYTES) {
    const slots = slotsFor(bytes);
    // Aligned memory comes in 64 KiB steps: its last word says how many slots there are.
    const size = slots * PAGE + (slots + 2) * 4;
    const memory = alignedSharedMemory(size) ?? new SharedArrayBuffer(size);
    new Int32Array(memory, memory.byteLength - 4, 1)[0] = slots;
    return memory;
  }

  /**
   * Whether `memory`, a window a finished download left, serves a file of `bytes`: it has at least
   * the slots a window made for the file would (a larger one leaves some of its slots unused). If
   * so it is made empty, as a new one is.
   */
  static reuse(memory, bytes) {
    const w = new HashWindow(memory);
    if (w.slots < slotsFor(bytes)) return false;
    w.tags.fill(0);
    return true;
  }

  constructor(memory) {
    this.slots = new Int32Array(memory, memory.byteLength - 4, 1)[0];
    this.bytes = Buffer.from(memory, 0, this.slots * PAGE);
    this.tags = new Int32Array(memory, this.slots * PAGE, this.slots + 1);
  }

  /** The writer's side: `n` bytes of `buf` were written at `at` in the file. */
  put(buf, n, at) {
    const hashed = Atomics.load(this.tags, this.slots);
    const last = Math.min(Math.floor((at + n) / PAGE), hashed + this.slots, MAX_PAGE);
    for (let p = Math.max(Math.ceil(at / PAGE), hashed); p < last; ) {
      // One copy per stretch of slots, which ends where they wrap.
      const end = Math.min(last, (Math.floor(p / this.slots) + 1) * this.slots);
      // fill() with a buffer of the same length copies it with memcpy; copy() and set() into shared
      // memory copy word by word with atomic stores (V8's relaxed_memmove: 0.13 CPU-seconds per GB
      // of a pull in `perf record`, a fifth to three times slower than fill() in isolation).
      const to = (p % this.slots) * PAGE;
      this.bytes.fill(buf.subarray(p * PAGE - at, end * PAGE - at), to, to + (end - p) * PAGE);
      this.hold(p * PAGE, (end - p) * PAGE);
      p = end;
    }
  }

  /**
   * The writer's side, without a copy: the slots where the file's bytes from `at` (on a page) will
   * be kept, up to `max` bytes of them, as memory to receive them into and write the file from;
   * undefined when `at` is off a page or not within reach of the hash. The stretch ends where the
   * slots wrap, and at the last page within reach (the slots before that hold pages the hash has
   * taken, so nothing it still needs is overwritten). Call hold() once the bytes are in the file.
   */
  claim(at, max) {
    if (at % PAGE !== 0 || max <= 0) return undefined;
    const first = at / PAGE;
    const hashed = Atomics.load(this.tags, this.slots);
    if (first < hashed || first >= Math.min(hashed + this.slots, MAX_PAGE)) return undefined;
    const pages = Math.min(Math.ceil(max / PAGE), hashed + this.slots - first, this.slots - (first % this.slots));
    const start = (first % this.slots) * PAGE;
    return this.bytes.subarray(start, start + Math.min(max, pages * PAGE));
  }

  /** The whole pages of the file's bytes [at, at + n) are in their slots (by put(), or after claim()). */
  hold(at, n) {
    const last = Math.min(Math.floor((at + n) / PAGE), MAX_PAGE);
    for (let p = Math.ceil(at / PAGE); p < last; p++) Atomics.store(this.tags, p % this.slots, p + 1);
  }

  /**
   * The hasher's side: how many bytes from `pos` (below `upTo`) the window holds in one stretch
   * (0: read them from the file, up to nextHeld()).
   */
  held(pos, upTo) {
    let p = Math.floor(pos / PAGE);
    let n = 0;
    while (pos + n < upTo && Atomics.load(this.tags, p % this.slots) === p + 1) {
      n = Math.min((p + 1) * PAGE, upTo) - pos;
      p++;
      // A run ends where the slots wrap, so that it is one stretch of memory.
      if (p % this.slots === 0) break;
    }
    return n;
  }

  /** The bytes the window holds from `pos`, `n` of them (as held() said). */
  view(pos, n) {
    const start = (Math.floor(pos / PAGE) % this.slots) * PAGE + (pos % PAGE);
    return this.bytes.subarray(start, start + n);
  }

  /** Where the first page the window holds after `pos` begins, or `limit` when none does before it. */
  nextHeld(pos, limit) {
    for (let p = Math.floor(pos / PAGE) + 1; p * PAGE < limit; p++) {
      if (Atomics.load(this.tags, p % this.slots) === p + 1) return p * PAGE;
    }
    return limit;
  }

  /**
   * The window's memory in the order a download's writers first reach it, as [start, end) byte
   * stretches: parts of `partSize` start side by side, `streams` at a time, each written front to
   * back, so the first megabyte of each of the first parts comes before the second megabyte of
   * any. Without `partSize`, front to back. Only the first `bytes` of the memory, where given: a
   * window larger than the file leaves the rest unused.
   */
  mappingOrder(partSize, streams = 1, bytes = this.bytes.length) {
    const total = Math.min(bytes, this.bytes.length);
    const step = 1 << 20;
    if (!(partSize > 0) || partSize >= total) return [[0, total]];
    const order = [];
    for (let group = 0; group < total; group += partSize * streams) {
      for (let at = 0; at < partSize; at += step) {
        for (let part = group; part < Math.min(group + partSize * streams, total); part += partSize) {
          const start = part + at;
          const end = Math.min(start + step, part + partSize, total);
          if (start < end) order.push([start, end]);
        }
      }
    }
    return order;
  }

  /**
   * Maps the pages of bytes [start, end) of the window's memory (direct-io.mjs, mapPages()), so
   * that the thread that copies into the window does not take their faults.
   */
  map(start, end) {
    mapPages(this.bytes.subarray(start, end));
  }

  /** The hash has taken every byte before `pos`: the pages before it may be reused. */
  hashedTo(pos) {
    Atomics.store(this.tags, this.slots, Math.floor(pos / PAGE));
  }
}
