// Reusable byte buffers for moving blobs. A multi-gigabyte transfer that allocates a fresh buffer
// per chunk makes garbage collection its main cost: buffers that are still queued when the young
// generation is collected get promoted, and only full (major) collections free them again, dozens
// of times per gigabyte. Bytes copied into pooled buffers leave the socket's chunks to die young,
// and the pooled ones are never garbage.

export class BufferPool {
  private readonly free: Buffer[] = [];

  /** `keep`: idle buffers beyond this many go back to the allocator. */
  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(b: Buffer): void {
    if (b.length === this.size && this.free.length < this.keep) this.free.push(b);
  }
}
