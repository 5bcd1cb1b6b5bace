// Reusable byte buffers for moving blobs. A multi-gigabyte transfer that allocates a fresh buffer
// per chunk makes garbage collection its main cost: buffers that are still queued when the young
// generation is collected get promoted, and only full (major) collections free them again, dozens
// of times per gigabyte. Bytes copied into pooled buffers leave the socket's chunks to die young,
// and the pooled ones are never garbage.

import { alignedBuffers, alignedSharedMemory, canAlign } from "./direct-io.mjs";

export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Whether take() hands out buffers that start on a page, as O_DIRECT asks (direct-io.mjs). */
  readonly aligned: boolean;

  private readonly shared: boolean;

  /**
   * `keep`: idle buffers beyond this many go back to the allocator. `pageAligned`: buffers that
   * can be written to a file opened with O_DIRECT, when the runtime can make them. `shared`: with
   * pageAligned, buffers in shared memory, which a worker thread can read where they lie, when the
   * runtime can make them (else ordinary aligned ones).
   */
  constructor(
    readonly size: number,
    private readonly keep: number,
    opts: { pageAligned?: boolean; shared?: boolean } = {},
  ) {
    this.aligned = opts.pageAligned === true && canAlign(size);
    this.shared = this.aligned && opts.shared === true;
  }

  private block(count: number): Buffer[] | undefined {
    const memory = this.shared ? alignedSharedMemory(this.size * count) : undefined;
    if (memory) return Array.from({ length: count }, (_, i) => Buffer.from(memory, i * this.size, this.size));
    return alignedBuffers(this.size, count);
  }

  take(): Buffer {
    const b = this.free.pop();
    if (b) return b;
    if (!this.aligned) return Buffer.allocUnsafeSlow(this.size);
    // A block of `keep` buffers at a time: each block is one reservation of address space.
    const block = this.block(Math.max(1, this.keep));
    // Out of address space: a buffer that a direct write refuses (EINVAL), and the writer's fallback.
    if (!block) return Buffer.allocUnsafeSlow(this.size);
    this.free.push(...block.slice(1));
    return block[0]!;
  }

  give(b: Buffer): void {
    if (b.length === this.size && this.free.length < this.keep) this.free.push(b);
  }
}
