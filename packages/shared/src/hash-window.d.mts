// Types for hash-window.mjs (plain JavaScript, which worker threads started without a loader import).

export declare class HashWindow {
  /** A new window's memory (for a file of `bytes` at most; 128 MiB ahead of the hash at most), to hand to both threads. */
  static create(bytes?: number): SharedArrayBuffer;
  /** Whether `memory`, a finished download's window, serves a file of `bytes` (it has at least the slots one made for it would); if so it is emptied. */
  static reuse(memory: SharedArrayBuffer, bytes: number): boolean;
  constructor(memory: SharedArrayBuffer);
  /** The writer's side: `n` bytes of `buf` were written at `at` in the file. */
  put(buf: Buffer, n: number, at: number): void;
  /**
   * Without a copy: the slots for the file's bytes from `at` (on a page), up to `max` bytes, to receive them into and write the
   * file from; undefined when `at` is off a page or out of the hash's reach. Call hold() once they are in the file.
   */
  claim(at: number, max: number): Buffer | undefined;
  /** The whole pages of the file's bytes [at, at + n) are in their slots. */
  hold(at: number, n: number): void;
  /** How many bytes from `pos` (below `upTo`) the window holds in one stretch (0: read them from the file, up to nextHeld()). */
  held(pos: number, upTo: number): number;
  /** The bytes the window holds from `pos`, `n` of them (as held() said). */
  view(pos: number, n: number): Buffer;
  /** Where the first page the window holds after `pos` begins, or `limit` when none does before it. */
  nextHeld(pos: number, limit: number): number;
  /** The window's memory (its first `bytes`, where given) in the order a download's writers first reach it (parts of `partSize`, `streams` at a time), as [start, end) stretches. */
  mappingOrder(partSize?: number, streams?: number, bytes?: number): Array<[number, number]>;
  /** Maps the pages of bytes [start, end) of the window's memory, so that the writer does not take their faults. */
  map(start: number, end: number): void;
  /** The hash has taken every byte before `pos`: the pages before it may be reused. */
  hashedTo(pos: number): void;
}
