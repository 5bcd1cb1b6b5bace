// Opens the database the configuration names: PostgreSQL through node-postgres when DATABASE_URL is
// set, otherwise embedded PGlite under the data directory. Migrations are applied on open.

import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema.ts";
import { unpackTemplate } from "./pgdata-template.ts";

export type Schema = typeof schema;
/** The query API common to both drivers; transactions are of this type too. */
export type Database = PgDatabase<PgQueryResultHKT, Schema>;

export interface OpenDatabase {
  db: Database;
  kind: "postgres" | "pglite";
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));

/**
 * A new database directory starts as the build's migrated template when there is one, else empty for
 * initdb. Either way it is its owner's alone: PGlite makes every file in it writable by anyone who
 * can reach it, and it holds the registry's signing keys.
 */
async function prepareDataDir(dir: string): Promise<void> {
  if (!unpackTemplate(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export async function openPostgres(url: string): Promise<OpenDatabase> {
  const { Pool } = (await import("pg")).default;
  const { drizzle } = await import("drizzle-orm/node-postgres");
  const { migrate } = await import("drizzle-orm/node-postgres/migrator");
  const pool = new Pool({ connectionString: url, max: 10 });
  // An idle client's error (the server restarting) must not bring the process down.
  pool.on("error", (e) => console.error(`database: ${e.message}`));
  const db = drizzle(pool, { schema });
  await migrate(db, { migrationsFolder });
  return { db: db as unknown as Database, kind: "postgres", close: () => pool.end() };
}

/** When the newest migration was made, as drizzle's journal records it. */
function newestMigration(): number {
  const journal = JSON.parse(readFileSync(join(migrationsFolder, "meta", "_journal.json"), "utf8")) as { entries: { when: number }[] };
  return Math.max(...journal.entries.map((e) => e.when));
}

/**
 * The migrator's own test (it applies each migration newer than the newest it recorded) in one
 * query, so that a start with nothing to apply skips what the migrator runs before that test (two
 * CREATE ... IF NOT EXISTS) and after it (an empty transaction): about as long as PGlite then takes
 * to answer every query of the first request. False when it cannot tell (no table yet: the
 * migrator creates it).
 */
async function upToDate(client: { query<T>(sql: string): Promise<{ rows: T[] }> }): Promise<boolean> {
  try {
    const { rows } = await client.query<{ created_at: string | number | bigint }>("SELECT created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1");
    return rows.length > 0 && Number(rows[0]!.created_at) >= newestMigration();
  } catch {
    return false;
  }
}

/**
 * Postgres settings for the embedded database, on top of PGlite's own. The server defaults size
 * shared memory for a database server: 128 MB of buffers and room for 100 connections, 145 MB in
 * all, which PGlite allocates by zeroing WebAssembly memory that is never given back. That was most
 * of a second of every start and over half of the process's resident memory, for a database of a
 * few megabytes behind one connection; a page these buffers miss is a read from the operating
 * system's file cache. maintenance_work_mem bounds what one VACUUM or CREATE INDEX may take, and so
 * keep.
 */
export const PGLITE_SETTINGS = ["shared_buffers=16MB", "max_connections=10", "maintenance_work_mem=16MB"];

/** `dir` undefined means in memory (tests). */
export async function openPGlite(dir: string | undefined): Promise<OpenDatabase> {
  const [{ PGlite }, { drizzle }, { migrate }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("drizzle-orm/pglite"),
    import("drizzle-orm/pglite/migrator"),
    // Unpacked while the modules above load.
    dir ? prepareDataDir(dir) : undefined,
  ]);
  const options = { startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((s) => ["-c", s])] };
  const client = dir ? new PGlite(dir, options) : new PGlite(options);
  try {
    const db = drizzle(client, { schema });
    if (!(await upToDate(client))) await migrate(db, { migrationsFolder });
    return { db: db as unknown as Database, kind: "pglite", close: () => client.close() };
  } catch (e) {
    await client.close().catch(() => {});
    throw e;
  }
}
