// Reusable byte buffers for moving blobs. A multi-gigabyte transfer that allocates a fresh buffer
// per chunk makes garbage collection its main cost: buffers that are still queued when the young
// generation is collected get promoted, and only full (major) collections free them again, dozens
// of times per gigabyte. Bytes copied into pooled buffers leave the socket's chunks to die young,
// and the pooled ones are never garbage.

import { alignedBuffers, alignedSharedMemory, canAlign, mapPages } from "./direct-io.mjs";

export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Whether take() hands out buffers that start on a page, as O_DIRECT asks (direct-io.mjs). */
  readonly aligned: boolean;

  private readonly shared: boolean;
  private readonly mapAhead: boolean;

  /**
   * `keep`: idle buffers beyond this many go back to the allocator. `pageAligned`: buffers that
   * can be written to a file opened with O_DIRECT, when the runtime can make them. `shared`: with
   * pageAligned, buffers in shared memory, which a worker thread can read where they lie, when the
   * runtime can make them (else ordinary aligned ones). `mapAhead`: with pageAligned, a new block's
   * pages are mapped one buffer per turn of the event loop, in the order take() hands them out, for
   * a pool whose buffers all end up in use anyway: their faults are then taken once, right after
   * the block is made, instead of by whichever transfer first needs more buffers than any before
   * it (the registry's queue of upload buffers: a 1 GB push after a 100 MB one took 8,000-13,000
   * page faults; with the pages mapped ahead, 1,400-3,400, and the registry's CPU
   * per GB 1.87-2.00 instead of 2.06-2.09 on a 2-core virtual machine; docs/architecture.md,
   * "Data flow: a push, on the registry").
   */
  constructor(
    readonly size: number,
    private readonly keep: number,
    opts: { pageAligned?: boolean; shared?: boolean; mapAhead?: boolean } = {},
  ) {
    this.aligned = opts.pageAligned === true && canAlign(size);
    this.shared = this.aligned && opts.shared === true;
    this.mapAhead = this.aligned && opts.mapAhead === true;
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
    // The first buffer is in use already: the rest in the order take() pops them.
    if (this.mapAhead) mapInTurns(block.slice(1).reverse());
    return block[0]!;
  }

  give(b: Buffer): void {
    if (b.length === this.size && this.free.length < this.keep) this.free.push(b);
  }
}

/** Maps the buffers' pages, one buffer per turn of the event loop, so that no turn waits long for it. */
function mapInTurns(buffers: Buffer[]): void {
  let next = 0;
  const step = (): void => {
    const b = buffers[next++];
    if (!b) return;
    mapPages(b);
    // Keeps nothing alive: a process that is done needs no mapped pages.
    setImmediate(step).unref();
  };
  setImmediate(step).unref();
}
