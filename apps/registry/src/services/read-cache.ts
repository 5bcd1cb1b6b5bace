// Memoised lookups on the request path (repository by name, manifest by tag or digest, a
// repository's blob). With the embedded database a query costs more than the rest of a manifest
// GET together, and every write goes through this process (PGlite admits one, and the admin CLI
// goes through the running server), so the code that writes a table can say so here and the
// memos that read it forget what they hold. With PostgreSQL other replicas and the CLI write
// behind this process's back: nothing is kept and every lookup goes to the database.
//
// A service that writes a table some memo reads wraps the write in `changing`; a delete names the
// tables its foreign keys cascade into as well. While a write runs, lookups of the tables it
// changes go to the database and keep nothing, so no request sees an old answer once the
// write has reached the database.

import type { Table } from "drizzle-orm";
import type { Database } from "../db/open.ts";

export interface MemoSpec<V> {
  /** Tables the lookup reads; a write to any of them drops every entry. */
  tables: readonly Table[];
  /** Most entries kept; the oldest go first. */
  max: number;
  /** Values this returns false for are answered but not kept (a huge manifest). */
  keep?: (value: V) => boolean;
}

class Memo<V> {
  private readonly entries = new Map<string, V>();
  /** Bumped whenever the entries are dropped: a lookup that straddles a write must not store its result. */
  private epoch = 0;
  /** Writes to the memo's tables under way; while any runs, lookups neither answer from nor store. */
  writing = 0;

  constructor(private readonly spec: MemoSpec<V>) {}

  reads(tables: readonly Table[]): boolean {
    return tables.some((t) => this.spec.tables.includes(t));
  }

  forget(): void {
    this.epoch++;
    this.entries.clear();
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    if (this.writing === 0 && this.entries.has(key)) return this.entries.get(key)!;
    const epoch = this.epoch;
    const value = await load();
    if (this.writing === 0 && epoch === this.epoch && (this.spec.keep?.(value) ?? true)) {
      if (this.entries.size >= this.spec.max) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, value);
    }
    return value;
  }
}

/** One registry's memoised lookups; `enabled` only for a database this process alone writes. */
export class ReadCache {
  private readonly memos = new Map<MemoSpec<unknown>, Memo<unknown>>();
  /** The tables of each write under way, for memos created while it runs. */
  private readonly writes = new Set<readonly Table[]>();

  constructor(readonly enabled: boolean) {}

  /**
   * `load()`, or what it returned last time for `key` if no write has changed its tables since.
   * Values are shared between requests: callers must not modify them.
   */
  read<V>(spec: MemoSpec<V>, key: string, load: () => Promise<V>): Promise<V> {
    if (!this.enabled) return load();
    let memo = this.memos.get(spec as MemoSpec<unknown>) as Memo<V> | undefined;
    if (!memo) {
      memo = new Memo(spec);
      for (const tables of this.writes) if (memo.reads(tables)) memo.writing++;
      this.memos.set(spec as MemoSpec<unknown>, memo as Memo<unknown>);
    }
    return memo.get(key, load);
  }

  /**
   * Runs `write`, which changes `tables`. The memos that read them forget what they hold when it
   * starts and again when it ends (committed or not), and answer nothing from memory in between.
   */
  async changing<T>(tables: readonly Table[], write: () => Promise<T>): Promise<T> {
    if (!this.enabled) return write();
    // A copy: two writes of the same tables at once are two entries.
    const own = [...tables];
    this.writes.add(own);
    for (const memo of this.memos.values()) {
      if (!memo.reads(own)) continue;
      memo.writing++;
      memo.forget();
    }
    try {
      return await write();
    } finally {
      this.writes.delete(own);
      // Memos created during the write counted it too (see read).
      for (const memo of this.memos.values()) {
        if (!memo.reads(own)) continue;
        memo.writing--;
        memo.forget();
      }
    }
  }
}

/** The database and its read cache: what a service that reads or writes memoised tables takes. A Registry is one. */
export interface CachedDatabase {
  db: Database;
  reads: ReadCache;
}

/** Shared values are frozen so that a caller that modifies one fails loudly instead of corrupting the cache. */
export function freeze<T>(value: T): T {
  return value && typeof value === "object" ? Object.freeze(value) : value;
}
