// Memoised lookups on the request path (repository by name, manifest by tag or digest, a
// repository's blob), kept only for a database this process alone writes and dropped as soon as a
// statement writes a table they read. With the embedded database a query costs more than the rest
// of a manifest GET together; with PostgreSQL there is no write feed and every lookup goes to it.

import { tableWritesOf } from "../db/table-writes.ts";

export interface MemoSpec<V> {
  /** Tables the lookup reads; a write to any of them drops every entry. */
  tables: readonly string[];
  /** Most entries kept; the oldest go first. */
  max: number;
  /** Values this returns false for are answered but not kept (a huge manifest). */
  keep?: (value: V) => boolean;
}

class Memo<V> {
  private readonly entries = new Map<string, V>();
  /** Bumped by every relevant write: a lookup that straddles one must not store its result. */
  private epoch = 0;

  constructor(private readonly spec: MemoSpec<V>) {}

  reads(table: string): boolean {
    return table === "*" || this.spec.tables.includes(table);
  }

  clear(): void {
    this.epoch++;
    this.entries.clear();
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    if (this.entries.has(key)) return this.entries.get(key)!;
    const epoch = this.epoch;
    const value = await load();
    if (epoch === this.epoch && (this.spec.keep?.(value) ?? true)) {
      if (this.entries.size >= this.spec.max) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, value);
    }
    return value;
  }
}

const memos = new WeakMap<object, Map<MemoSpec<unknown>, Memo<unknown>>>();

/**
 * The memo for `spec` on this database, or undefined when the database has no write feed. Values
 * are shared between requests: callers must not modify them.
 */
function memoFor<V>(db: object, spec: MemoSpec<V>): Memo<V> | undefined {
  let byDb = memos.get(db);
  if (!byDb) {
    const feed = tableWritesOf(db);
    if (!feed) return undefined;
    const created = new Map<MemoSpec<unknown>, Memo<unknown>>();
    feed.subscribe((table) => {
      for (const memo of created.values()) if (memo.reads(table)) memo.clear();
    });
    memos.set(db, created);
    byDb = created;
  }
  let memo = byDb.get(spec as MemoSpec<unknown>) as Memo<V> | undefined;
  if (!memo) {
    memo = new Memo(spec);
    byDb.set(spec as MemoSpec<unknown>, memo as Memo<unknown>);
  }
  return memo;
}

/** `load()`, or what it returned last time for `key` if no write has touched its tables since. */
export function cachedRead<V>(db: object, spec: MemoSpec<V>, key: string, load: () => Promise<V>): Promise<V> {
  const memo = memoFor(db, spec);
  return memo ? memo.get(key, load) : load();
}

/** Shared values are frozen so that a caller that modifies one fails loudly instead of corrupting the cache. */
export function freeze<T>(value: T): T {
  return value && typeof value === "object" ? Object.freeze(value) : value;
}
