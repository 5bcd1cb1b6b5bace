// Opens the database the configuration names: PostgreSQL through node-postgres when DATABASE_URL is
// set, otherwise embedded PGlite under the data directory. Migrations are applied on open.

import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema.ts";
import { TableWrites, registerTableWrites } from "./table-writes.ts";

export type Schema = typeof schema;
/** The query API common to both drivers; transactions are of this type too. */
export type Database = PgDatabase<PgQueryResultHKT, Schema>;

export interface OpenDatabase {
  db: Database;
  kind: "postgres" | "pglite";
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));

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

/** `dir` undefined means in memory (tests). */
export async function openPGlite(dir: string | undefined): Promise<OpenDatabase> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  if (dir) mkdirSync(dir, { recursive: true });
  const client = dir ? new PGlite(dir) : new PGlite();
  try {
    const writes = new TableWrites();
    const db = drizzle(client, { schema, logger: writes });
    await migrate(db, { migrationsFolder });
    registerTableWrites(db, writes);
    return { db: db as unknown as Database, kind: "pglite", close: () => client.close() };
  } catch (e) {
    await client.close().catch(() => {});
    throw e;
  }
}
