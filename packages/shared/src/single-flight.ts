// One piece of work per key at a time: whoever asks while it runs gets the same promise. The
// registry's mirror uses it so that concurrent first pulls cause one upstream request per manifest
// and one download per blob (docs/protocol.md, "Mirrors"); its catalog, so that concurrent page
// views of a new model read each blob's facts once; the daemon, so that two pulls naming the same
// blob download it once and both show its progress.

export class SingleFlight<K, V> {
  private readonly running = new Map<K, V>();

  /** The value in flight for `key`, if any. */
  get(key: K): V | undefined {
    return this.running.get(key);
  }

  get size(): number {
    return this.running.size;
  }

  values(): IterableIterator<V> {
    return this.running.values();
  }

  /**
   * The running value for `key`, or a new one from `start`; `settled` (a promise the value exposes)
   * removes it once it is over, so the next caller starts afresh.
   */
  join(key: K, start: () => V, settled: (v: V) => Promise<unknown>): V {
    const existing = this.running.get(key);
    if (existing !== undefined) return existing;
    const v = start();
    this.running.set(key, v);
    const forget = (): void => {
      if (this.running.get(key) === v) this.running.delete(key);
    };
    settled(v).then(forget, forget);
    return v;
  }

  /** Runs `fn` once for concurrent callers with the same key; each gets its result or its error. */
  run(key: K, fn: () => V): V {
    return this.join(key, fn, (v) => Promise.resolve(v));
  }
}
