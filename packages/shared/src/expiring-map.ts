// A map whose entries each hold until a time given with them, and which keeps at most `max`: when
// it is full, the entry set longest ago goes first. An entry found expired is dropped as it is
// looked up. For memories that must stay bounded whatever callers send (a registry's verified
// tokens, its mirror's answers that a name is missing upstream). Times are whatever unit the
// caller uses for both `until` and `now`.

export class ExpiringMap<K, V> {
  private readonly entries = new Map<K, { value: V; until: number }>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The value, while `now` is before its `until`. */
  get(key: K, now: number): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (now < e.until) return e.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: K, value: V, until: number): void {
    this.entries.delete(key);
    if (this.max <= 0) return;
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, until });
  }
}
