// Which tables a database handle writes, seen as drizzle hands each statement to the driver. Read
// caches subscribe to it to drop what a write may have changed. Only a database this process alone
// writes has a feed (the embedded one: PGlite is single-process, and the admin CLI goes through the
// running server); with PostgreSQL, other replicas and the CLI write behind this process's back.

import type { Logger } from "drizzle-orm";

/** A table name, or "*" when the statement may touch any table. */
export type WrittenTable = string;
export type WriteListener = (table: WrittenTable) => void;

const SELECT = /^\s*select\b/i;
const INSERT_OR_UPDATE = /^\s*(?:insert\s+into|update)\s+"([^"]+)"/i;

/**
 * The table a statement writes; undefined for a read. Deletes count as writing everything, since
 * foreign keys cascade them into other tables; so does any statement of an unknown shape.
 */
export function writtenTable(statement: string): WrittenTable | undefined {
  if (SELECT.test(statement)) return undefined;
  return INSERT_OR_UPDATE.exec(statement)?.[1] ?? "*";
}

export class TableWrites implements Logger {
  private readonly listeners = new Set<WriteListener>();

  /**
   * Called before the statement is sent. PGlite runs one statement at a time, and a transaction
   * holds it until it ends, so a read that starts after this call sees the write's result.
   */
  logQuery(query: string): void {
    if (this.listeners.size === 0) return;
    const table = writtenTable(query);
    if (table === undefined) return;
    for (const listener of this.listeners) listener(table);
  }

  subscribe(listener: WriteListener): void {
    this.listeners.add(listener);
  }
}

const feeds = new WeakMap<object, TableWrites>();

export function registerTableWrites(db: object, feed: TableWrites): void {
  feeds.set(db, feed);
}

/** The write feed of a database only this process writes; undefined otherwise. */
export function tableWritesOf(db: object): TableWrites | undefined {
  return feeds.get(db);
}
