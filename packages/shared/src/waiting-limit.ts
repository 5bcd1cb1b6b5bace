// At most `max` holders at once, the others waiting in the order they asked. The registry's
// filesystem store uses it to bound the upload bytes queued for the disk across every upload of the
// process (storage/filesystem.ts says why the queue is deep). Written here because what it needs,
// a place handed straight to the next in line with no polling, is a dozen lines.

export class WaitingLimit {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`a limit of ${max} lets nothing through`);
  }

  /** Holders now, and callers waiting for a place. */
  get holders(): number {
    return this.used;
  }

  get waiters(): number {
    return this.waiting.length;
  }

  /** Resolves once a place is the caller's; leave() gives it back. */
  enter(): Promise<void> {
    if (this.used < this.max && this.waiting.length === 0) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Gives a place back: to the first caller waiting, if any. */
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else if (this.used > 0) this.used--;
  }
}
