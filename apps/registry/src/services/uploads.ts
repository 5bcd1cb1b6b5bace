// Upload sessions (docs/protocol.md, "Upload sessions" and "Uploading a blob"). A session is a database row with the number of
// bytes received; its bytes live in the blob store's upload area. The sha256 of what has arrived is
// kept in memory only as a shortcut: when this process saw every chunk the digest is known at the
// final PUT, otherwise (a restart, another instance) the bytes are read back and hashed.
//
// Sessions are bounded: each account may hold REGISTRY_UPLOAD_LIMIT at once, and a session that
// receives nothing for REGISTRY_UPLOAD_TTL expires (row and bytes). A chunk still arriving keeps
// its session alive, however long it takes.

import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { and, count, eq, inArray, lt, sql } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { accounts, blobs, repositoryBlobs, uploads } from "../db/schema.ts";
import { RegistryError } from "../errors.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { isUploadId, UploadNotFoundError } from "../storage/blob-store.ts";
import type { CachedDatabase } from "./read-cache.ts";
import { startHash, type RunningHash } from "./upload-hash.ts";

export interface UploadRow {
  id: string;
  repositoryId: number;
  size: number;
}

/**
 * Running hashes of sessions this process has seen from the start (upload-hash.ts); bounded so idle
 * sessions cannot pile up. A hash is taken out while a chunk feeds it and put back after.
 */
export class UploadHashes {
  private readonly map = new Map<string, { offset: number; hash: RunningHash }>();
  constructor(private readonly max = 1024) {}

  /** The session's hash, if it has seen exactly the first `offset` bytes; it is no longer held here. */
  take(id: string, offset: number): RunningHash | undefined {
    const e = this.map.get(id);
    this.map.delete(id);
    if (e && e.offset === offset) return e.hash;
    e?.hash.discard();
    return undefined;
  }

  set(id: string, offset: number, hash: RunningHash): void {
    this.drop(id);
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.drop(oldest);
    }
    this.map.set(id, { offset, hash });
  }

  drop(id: string): void {
    this.map.get(id)?.hash.discard();
    this.map.delete(id);
  }
}

/** Where sessions live: rows in the database, bytes in the store's upload area, running hashes in memory. */
export interface UploadStorage {
  db: Database;
  store: BlobStore;
  hashes: UploadHashes;
}

export interface UploadOpener {
  accountId: number;
  /** The account's name, for the message when it is at its limit. */
  accountName: string;
  /** REGISTRY_UPLOAD_LIMIT; 0: unlimited. */
  limit: number;
  ttlSeconds: number;
}

const rowColumns = { id: uploads.id, repositoryId: uploads.repositoryId, size: uploads.size };

/** Inserts the session unless the account already holds `limit`; then says how many it holds. */
async function insertWithinLimit(db: Database, repositoryId: number, opener: UploadOpener): Promise<{ row: UploadRow } | { open: number }> {
  if (opener.limit === 0) {
    const [row] = await db.insert(uploads).values({ repositoryId, accountId: opener.accountId }).returning(rowColumns);
    if (!row) throw new Error("could not create an upload session");
    return { row };
  }
  return db.transaction(async (tx) => {
    // Locking the account's row serialises its session starts across connections and replicas,
    // so concurrent starts cannot all count the same free place.
    await tx.execute(sql`select 1 from ${accounts} where ${accounts.id} = ${opener.accountId} for no key update`);
    const open = await openSessions(tx, opener.accountId);
    if (open >= opener.limit) return { open };
    const [row] = await tx.insert(uploads).values({ repositoryId, accountId: opener.accountId }).returning(rowColumns);
    if (!row) throw new Error("could not create an upload session");
    return { row };
  });
}

function humanSeconds(s: number): string {
  if (s >= 3600 && s % 3600 === 0) return `${s / 3600} h`;
  if (s >= 60 && s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

function tooMany(open: number, opener: UploadOpener): RegistryError {
  return new RegistryError(
    "TOOMANYREQUESTS",
    `${open} upload sessions are open for ${opener.accountName}, the most one account may hold: finish or cancel some ` +
      `(a session that receives nothing for ${humanSeconds(opener.ttlSeconds)} expires by itself), ` +
      `or ask the registry's administrator to raise REGISTRY_UPLOAD_LIMIT (now ${opener.limit})`,
  );
}

async function openSessions(db: Database, accountId: number): Promise<number> {
  const [held] = await db.select({ open: count() }).from(uploads).where(eq(uploads.accountId, accountId));
  return held?.open ?? 0;
}

/**
 * Refuses with 429 when the account holds its limit of sessions. At the limit, the account's own
 * expired sessions (which the periodic sweep may not have reached yet) are removed first. Called
 * before anything is created for the request; startUpload enforces the limit again, exactly.
 */
export async function ensureUploadRoom(db: Database, store: BlobStore, hashes: UploadHashes, opener: UploadOpener): Promise<void> {
  if (opener.limit === 0) return;
  let open = await openSessions(db, opener.accountId);
  if (open < opener.limit) return;
  if ((await expireUploads({ db, store, hashes }, opener.ttlSeconds, { accountId: opener.accountId })) > 0) open = await openSessions(db, opener.accountId);
  if (open >= opener.limit) throw tooMany(open, opener);
}

/** Opens a session for the account, or refuses with 429 when it holds its limit. */
export async function startUpload({ db, store, hashes }: UploadStorage, repositoryId: number, opener: UploadOpener): Promise<UploadRow> {
  const result = await insertWithinLimit(db, repositoryId, opener);
  if ("open" in result) throw tooMany(result.open, opener);
  const row = result.row;
  await store.createUpload(row.id);
  hashes.set(row.id, 0, startHash());
  return row;
}

export interface ExpireOptions {
  /** Only this account's sessions. */
  accountId?: number;
  /** A session whose row is gone but whose bytes the store failed to delete (garbage collection finds them later). */
  onStoreError?: (id: string, error: unknown) => void;
}

const EXPIRE_BATCH = 500;

/**
 * Removes sessions that received nothing for `ttlSeconds`, rows then bytes; returns how many.
 * Several replicas may run this at once: each row comes back from exactly one DELETE … RETURNING,
 * and only that caller removes its bytes. The age is checked again as the row is deleted, so a
 * session that has just received a chunk stays.
 */
export async function expireUploads({ db, store, hashes }: UploadStorage, ttlSeconds: number, opts: ExpireOptions = {}): Promise<number> {
  const idle = and(
    lt(uploads.updatedAt, sql`now() - make_interval(secs => ${ttlSeconds})`),
    opts.accountId === undefined ? undefined : eq(uploads.accountId, opts.accountId),
  );
  let removed = 0;
  for (;;) {
    const batch = db.select({ id: uploads.id }).from(uploads).where(idle).limit(EXPIRE_BATCH);
    const rows = await db
      .delete(uploads)
      .where(and(inArray(uploads.id, batch), idle))
      .returning({ id: uploads.id });
    for (const { id } of rows) {
      hashes.drop(id);
      try {
        await store.discardUpload(id);
      } catch (e) {
        opts.onStoreError?.(id, e);
      }
    }
    removed += rows.length;
    if (rows.length < EXPIRE_BATCH) return removed;
  }
}

export interface UploadSweeper {
  stop(): Promise<void>;
}

/**
 * Expires idle sessions every so often (half the TTL, at most a minute), for `serve`. A sweep that
 * fails is logged and the next one tries again.
 */
export function startUploadSweeper(
  reg: { db: Database; store: BlobStore; hashes: UploadHashes; config: { uploadTTLSeconds: number } },
  log: { info(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void },
): UploadSweeper {
  const ttl = reg.config.uploadTTLSeconds;
  const everyMs = Math.min(60_000, Math.max(250, (ttl * 1000) / 2));
  let running: Promise<void> | undefined;
  const sweep = (): void => {
    if (running) return;
    running = expireUploads(reg, ttl, {
      onStoreError: (id, e) => log.warn("an expired upload session's bytes could not be deleted; garbage collection will remove them", { upload: id, error: String(e) }),
    })
      .then(
        (n) => {
          if (n > 0) log.info(`expired ${n} upload session(s) idle for more than ${ttl} s`, { expired: n, ttl_s: ttl });
        },
        (e: unknown) => log.warn("upload sweep failed; retrying at the next one", { error: e instanceof Error ? e.message : String(e) }),
      )
      .finally(() => (running = undefined));
  };
  const timer = setInterval(sweep, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

export async function findUpload(db: Database, repositoryId: number, id: string): Promise<UploadRow> {
  if (!isUploadId(id)) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${JSON.stringify(id.slice(0, 80))} is not known`);
  const [row] = await db
    .select({ id: uploads.id, repositoryId: uploads.repositoryId, size: uploads.size })
    .from(uploads)
    .where(and(eq(uploads.id, id), eq(uploads.repositoryId, repositoryId)));
  if (!row) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${id} is not known`);
  return row;
}

function expired(id: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${id} is not known: it expired, was cancelled or was completed`);
}

/** Marks the session alive, now and then every quarter of its TTL (at most a minute) until stopped. */
async function keepAlive(db: Database, id: string, ttlSeconds: number): Promise<() => void> {
  const touch = () => db.update(uploads).set({ updatedAt: sql`now()` }).where(eq(uploads.id, id)).returning({ id: uploads.id });
  // The sweep may have taken the session since it was looked up: then nothing is written.
  if ((await touch()).length === 0) throw expired(id);
  let pending = false;
  const timer = setInterval(() => {
    if (pending) return;
    pending = true;
    // A failed touch only narrows the margin before the sweep; the next one tries again.
    touch()
      .catch(() => undefined)
      .finally(() => (pending = false));
  }, Math.min(60_000, Math.max(100, (ttlSeconds * 1000) / 4)));
  timer.unref();
  return () => clearInterval(timer);
}

export interface AppendChunkOptions {
  /** Where the chunk starts; it must be the session's current size. */
  offset: number;
  body: Readable;
  /** The announced length, when there is one: fewer or more bytes are refused. */
  length: number | undefined;
  /** REGISTRY_UPLOAD_TTL, for keeping the session alive while the chunk arrives. */
  ttlSeconds: number;
}

/**
 * Appends a chunk at `offset`, which must be the session's current size. Returns the new size.
 * A concurrent chunk for the same session loses with RANGE_INVALID instead of corrupting it. While
 * the chunk arrives the session is kept from expiring (`ttlSeconds`, REGISTRY_UPLOAD_TTL).
 */
export async function appendChunk({ db, store, hashes }: UploadStorage, row: UploadRow, chunk: AppendChunkOptions): Promise<number> {
  const { offset } = chunk;
  if (offset !== row.size) {
    throw new RegistryError("RANGE_INVALID", `chunk starts at ${offset} but the upload has ${row.size} bytes`).withHeaders(rangeHeaders(row.size));
  }
  const hash = hashes.take(row.id, offset);
  try {
    const size = await appendTaken({ db, store }, row, chunk, hash);
    if (hash) hashes.set(row.id, size, hash);
    return size;
  } catch (e) {
    // Bytes of a failed chunk may have reached the hash: it no longer says what the session holds.
    hash?.discard();
    throw e;
  }
}

async function appendTaken({ db, store }: Omit<UploadStorage, "hashes">, row: UploadRow, chunk: AppendChunkOptions, hash: RunningHash | undefined): Promise<number> {
  const { offset, body, length, ttlSeconds } = chunk;
  const stopKeepingAlive = await keepAlive(db, row.id, ttlSeconds);
  let written: number;
  try {
    written = await store.append(row.id, offset, body, { length, observe: hash ? (bytes) => hash.update(bytes) : undefined });
  } catch (e) {
    if (e instanceof UploadNotFoundError) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${row.id} has no data`);
    throw e;
  } finally {
    stopKeepingAlive();
  }
  if (length !== undefined && written !== length) {
    throw new RegistryError("SIZE_INVALID", `Content-Length is ${length} but ${written} bytes arrived`);
  }
  const updated = await db
    .update(uploads)
    .set({ size: offset + written, updatedAt: sql`now()` })
    .where(and(eq(uploads.id, row.id), eq(uploads.size, offset)))
    .returning({ size: uploads.size });
  if (updated.length === 0) {
    const [still] = await db.select({ id: uploads.id }).from(uploads).where(eq(uploads.id, row.id));
    if (still) throw new RegistryError("RANGE_INVALID", "another chunk for this upload arrived at the same time");
    // Removed while the chunk arrived (cancelled, or expired on another replica): what this chunk
    // wrote after that removal would otherwise stay in the upload area.
    await store.discardUpload(row.id).catch(() => undefined);
    throw expired(row.id);
  }
  row.size = offset + written;
  return row.size;
}

export function rangeHeaders(size: number): Record<string, string> {
  return { Range: `0-${Math.max(0, size - 1)}` };
}

async function hashStored(store: BlobStore, row: UploadRow): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of await store.readUpload(row.id, row.size)) h.update(chunk as Buffer);
  return `sha256:${h.digest("hex")}`;
}

/**
 * Verifies the session's bytes against `digest` and makes them the blob, linked to the repository.
 * On a mismatch nothing is kept: the session and its bytes are removed.
 */
export async function finishUpload(reg: CachedDatabase & { store: BlobStore; hashes: UploadHashes }, row: UploadRow, digest: string): Promise<void> {
  const { db, store, hashes } = reg;
  // The running hash when this process saw every byte and its thread is still there; else the stored bytes.
  const running = await hashes.take(row.id, row.size)?.digest().catch(() => undefined);
  const actual = running ?? (await hashStored(store, row));
  if (actual !== digest) {
    await cancelUpload(db, store, hashes, row);
    throw new RegistryError("DIGEST_INVALID", `the uploaded data has digest ${actual}, not ${digest}; nothing was kept`).withDetail({ expected: digest, actual });
  }
  // The upload row goes first: a second PUT for the same session then finds nothing to commit.
  const deleted = await db.delete(uploads).where(eq(uploads.id, row.id)).returning({ id: uploads.id });
  if (deleted.length === 0) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${row.id} was already completed`);
  const existing = await store.stat(digest);
  if (existing && existing.size === row.size) await store.discardUpload(row.id);
  else await store.commit(row.id, row.size, digest);
  await recordBlob(reg, row.repositoryId, digest, row.size);
}

/** Records a committed blob and links it to the repository; touching it protects it from collection. */
export async function recordBlob({ db, reads }: CachedDatabase, repositoryId: number, digest: string, size: number): Promise<void> {
  await reads.changing([blobs, repositoryBlobs], async () => {
    await db
      .insert(blobs)
      .values({ digest, size })
      .onConflictDoUpdate({ target: blobs.digest, set: { touchedAt: sql`now()` } });
    await db
      .insert(repositoryBlobs)
      .values({ repositoryId, digest })
      .onConflictDoUpdate({ target: [repositoryBlobs.repositoryId, repositoryBlobs.digest], set: { linkedAt: sql`now()` } });
  });
}

export async function cancelUpload(db: Database, store: BlobStore, hashes: UploadHashes, row: UploadRow): Promise<void> {
  hashes.drop(row.id);
  await db.delete(uploads).where(eq(uploads.id, row.id));
  await store.discardUpload(row.id);
}
