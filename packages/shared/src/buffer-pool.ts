// Reusable byte buffers for moving blobs. A multi-gigabyte transfer that allocates a fresh buffer
// per chunk makes garbage collection its main cost: buffers that are still queued when the young
// generation is collected get promoted, and only full (major) collections free them again, dozens
// of times per gigabyte. Bytes copied into pooled buffers leave the socket's chunks to die young,
// and the pooled ones are never garbage.

import { alignedBuffers, canAlign } from "./direct-io.mjs";

export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Whether take() hands out buffers that start on a page, as O_DIRECT asks (direct-io.mjs). */
  readonly aligned: boolean;

  /**
   * `keep`: idle buffers beyond this many go back to the allocator. `pageAligned`: buffers that
   * can be written to a file opened with O_DIRECT, when the runtime can make them.
   */
  constructor(
    readonly size: number,
    private readonly keep: number,
    opts: { pageAligned?: boolean } = {},
  ) {
    this.aligned = opts.pageAligned === true && canAlign(size);
  }

  take(): Buffer {
    const b = this.free.pop();
    if (b) return b;
    if (!this.aligned) return Buffer.allocUnsafeSlow(this.size);
    // A block of `keep` buffers at a time: each block is one reservation of address space.
    const block = alignedBuffers(this.size, Math.max(1, this.keep));
    // Out of address space: a buffer that a direct write refuses (EINVAL), and the writer's fallback.
    if (!block) return Buffer.allocUnsafeSlow(this.size);
    this.free.push(...block.slice(1));
    return block[0]!;
  }

  give(b: Buffer): void {
    if (b.length === this.size && this.free.length < this.keep) this.free.push(b);
  }
}
