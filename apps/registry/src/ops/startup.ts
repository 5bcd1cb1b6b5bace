// Opening the registry's database and blob store for `serve` and `migrate`, with failures reported
// against the variable that configured them: an unreachable PostgreSQL names DATABASE_URL (without
// its password), an unusable bucket names S3_BUCKET and S3_ENDPOINT.

import { join } from "node:path";
import type { Config } from "../config.ts";
import { openPGlite, openPostgres, type OpenDatabase } from "../db/open.ts";
import { openRegistry, type OpenOptions, type Registry } from "../registry.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { openBlobStore } from "../storage/open.ts";

const CONNECT_TIMEOUT_MS = 10_000;
const STORE_TIMEOUT_MS = 20_000;
/** pg_advisory_lock key taken while migrations run ("corral" in ASCII). */
const MIGRATION_LOCK = 0x636f7272616c;

/** host:port/database of a PostgreSQL URL: enough to say where, never the credentials. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get("host") || "localhost";
    return `${host}${u.port ? `:${u.port}` : ""}${u.pathname.length > 1 ? u.pathname : ""}`;
  } catch {
    return "(unparseable URL)";
  }
}

/** The reason in an error, including the parts of an AggregateError (a host with several addresses). */
export function reason(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: unknown[] };
  if (Array.isArray(e?.errors) && e.errors.length > 0) return e.errors.map(reason).join("; ");
  return e?.message || e?.code || String(err);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Connects to PostgreSQL (failing within CONNECT_TIMEOUT_MS when it cannot be reached) and applies
 * migrations under an advisory lock, so replicas starting together and the migrate Job take turns.
 */
export async function openPostgresChecked(url: string): Promise<OpenDatabase> {
  const where = describeDatabase(url);
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on("error", () => {
    // Reported through the failing query instead.
  });
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw new Error(`DATABASE_URL: cannot connect to PostgreSQL at ${where}: ${reason(e)}`);
  }
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      return await openPostgres(url);
    } catch (e) {
      throw new Error(`DATABASE_URL: could not open or migrate the database at ${where}: ${reason(e)}`);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** The configured database, migrated: PostgreSQL, or PGlite under the data directory. */
export async function openDatabase(config: Config): Promise<OpenDatabase> {
  if (config.databaseURL) return openPostgresChecked(config.databaseURL);
  const dir = join(config.dataDir, "db");
  try {
    return await openPGlite(dir);
  } catch (e) {
    throw new Error(`REGISTRY_DATA: cannot open the embedded database in ${dir}: ${reason(e)}`);
  }
}

async function openStore(config: Config): Promise<BlobStore> {
  const s3 = config.s3;
  if (!s3) return openBlobStore(config);
  const where = `bucket ${s3.bucket} at ${s3.endpoint ?? "AWS S3"}`;
  try {
    return await withTimeout(openBlobStore(config), STORE_TIMEOUT_MS, `no answer within ${STORE_TIMEOUT_MS / 1000}s`);
  } catch (e) {
    throw new Error(`S3_BUCKET/S3_ENDPOINT: cannot use ${where}: ${reason(e)}`);
  }
}

/** Milliseconds each step of opening the registry took, for the log line that says it is ready. */
export type StartupTimes = Record<string, number>;

async function timed<T>(times: StartupTimes, step: string, work: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await work();
  } finally {
    times[step] = Math.round(performance.now() - start);
  }
}

/**
 * Opens everything `serve` needs, the database and the blob store at the same time (a PostgreSQL
 * connection and an S3 bucket check both wait on the network); the first failure, the database's
 * when both fail, says which setting to fix.
 */
export async function openForServing(config: Config, opts: OpenOptions = {}, times: StartupTimes = {}): Promise<Registry> {
  const [db, store] = await Promise.allSettled([
    opts.db ? Promise.resolve(opts.db) : timed(times, "database", () => openDatabase(config)),
    opts.store ? Promise.resolve(opts.store) : timed(times, "blobs", () => openStore(config)),
  ]);
  const closeOpened = async (): Promise<void> => {
    if (store.status === "fulfilled" && !opts.store) await store.value.close().catch(() => {});
    if (db.status === "fulfilled" && !opts.db) await db.value.close().catch(() => {});
  };
  if (db.status === "rejected" || store.status === "rejected") {
    await closeOpened();
    throw db.status === "rejected" ? db.reason : (store as PromiseRejectedResult).reason;
  }
  try {
    return await timed(times, "secrets", () => openRegistry(config, { db: db.value, store: store.value }));
  } catch (e) {
    await closeOpened();
    throw e;
  }
}
