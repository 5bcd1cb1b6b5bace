// Pushing a file's written bytes to the disk while more are being written (a blob arriving over
// the network): every `every` bytes an fdatasync starts in the background, so the flush before
// the file is committed finds little left to do and dirty pages do not pile up over a
// multi-gigabyte transfer. A background flush that fails is reported by `drain` or `finish`.

import type { FileHandle } from "node:fs/promises";

export class BackgroundFlush {
  private pending = 0;
  private running: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly fh: FileHandle,
    private readonly every = 64 << 20,
  ) {}

  /** `n` more bytes were written (the write has completed). */
  wrote(n: number): void {
    this.pending += n;
    if (this.pending < this.every || this.running) return;
    this.pending = 0;
    this.running = this.fh
      .datasync()
      .catch((e: unknown) => void (this.failure ??= e))
      .finally(() => (this.running = undefined));
  }

  /** Waits for a background flush and raises its failure, if any. */
  async drain(): Promise<void> {
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Everything written so far is on the disk. */
  async finish(): Promise<void> {
    await this.drain();
    await this.fh.datasync();
  }

  /** Waits for a background flush, whatever its outcome (before the file is closed). */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }
}
