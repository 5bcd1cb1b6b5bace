// Upload sessions (§5.6 and the OCI push flow). A session is a database row with the number of
// bytes received; its bytes live in the blob store's upload area. The sha256 of what has arrived is
// kept in memory only as a shortcut: when this process saw every chunk the digest is known at the
// final PUT, otherwise (a restart, another instance) the bytes are read back and hashed.

import { createHash, type Hash } from "node:crypto";
import type { Readable } from "node:stream";
import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { blobs, repositoryBlobs, uploads } from "../db/schema.ts";
import { RegistryError } from "../errors.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { isUploadId, UploadNotFoundError } from "../storage/blob-store.ts";

export interface UploadRow {
  id: string;
  repositoryId: number;
  size: number;
}

/** Running hashes of sessions this process has seen from the start; bounded so idle sessions cannot pile up. */
export class UploadHashes {
  private readonly map = new Map<string, { offset: number; hash: Hash }>();
  constructor(private readonly max = 1024) {}

  get(id: string, offset: number): Hash | undefined {
    const e = this.map.get(id);
    return e && e.offset === offset ? e.hash : undefined;
  }

  set(id: string, offset: number, hash: Hash): void {
    this.map.delete(id);
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    this.map.set(id, { offset, hash });
  }

  drop(id: string): void {
    this.map.delete(id);
  }
}

export async function startUpload(db: Database, store: BlobStore, hashes: UploadHashes, repositoryId: number): Promise<UploadRow> {
  const [row] = await db.insert(uploads).values({ repositoryId }).returning({ id: uploads.id, repositoryId: uploads.repositoryId, size: uploads.size });
  if (!row) throw new Error("could not create an upload session");
  await store.createUpload(row.id);
  hashes.set(row.id, 0, createHash("sha256"));
  return row;
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

/**
 * Appends a chunk at `offset`, which must be the session's current size. Returns the new size.
 * A concurrent chunk for the same session loses with RANGE_INVALID instead of corrupting it.
 */
export async function appendChunk(
  db: Database,
  store: BlobStore,
  hashes: UploadHashes,
  row: UploadRow,
  offset: number,
  body: Readable,
  length: number | undefined,
): Promise<number> {
  if (offset !== row.size) {
    throw new RegistryError("RANGE_INVALID", `chunk starts at ${offset} but the upload has ${row.size} bytes`, undefined, rangeHeaders(row.size));
  }
  const hash = hashes.get(row.id, offset);
  hashes.drop(row.id);
  let written: number;
  try {
    written = await store.append(row.id, offset, body, length, hash ? (bytes) => hash.update(bytes) : undefined);
  } catch (e) {
    if (e instanceof UploadNotFoundError) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${row.id} has no data`);
    throw e;
  }
  if (length !== undefined && written !== length) {
    throw new RegistryError("SIZE_INVALID", `Content-Length is ${length} but ${written} bytes arrived`);
  }
  const updated = await db
    .update(uploads)
    .set({ size: offset + written, updatedAt: sql`now()` })
    .where(and(eq(uploads.id, row.id), eq(uploads.size, offset)))
    .returning({ size: uploads.size });
  if (updated.length === 0) throw new RegistryError("RANGE_INVALID", "another chunk for this upload arrived at the same time");
  if (hash) hashes.set(row.id, offset + written, hash);
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
export async function finishUpload(db: Database, store: BlobStore, hashes: UploadHashes, row: UploadRow, digest: string): Promise<void> {
  const cached = hashes.get(row.id, row.size);
  hashes.drop(row.id);
  const actual = cached ? `sha256:${cached.digest("hex")}` : await hashStored(store, row);
  if (actual !== digest) {
    await cancelUpload(db, store, hashes, row);
    throw new RegistryError("DIGEST_INVALID", `the uploaded data has digest ${actual}, not ${digest}; nothing was kept`, { expected: digest, actual });
  }
  // The upload row goes first: a second PUT for the same session then finds nothing to commit.
  const deleted = await db.delete(uploads).where(eq(uploads.id, row.id)).returning({ id: uploads.id });
  if (deleted.length === 0) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `upload ${row.id} was already completed`);
  const existing = await store.stat(digest);
  if (existing && existing.size === row.size) await store.discardUpload(row.id);
  else await store.commit(row.id, row.size, digest);
  await recordBlob(db, row.repositoryId, digest, row.size);
}

/** Records a committed blob and links it to the repository; touching it protects it from collection. */
export async function recordBlob(db: Database, repositoryId: number, digest: string, size: number): Promise<void> {
  await db
    .insert(blobs)
    .values({ digest, size })
    .onConflictDoUpdate({ target: blobs.digest, set: { touchedAt: sql`now()` } });
  await db
    .insert(repositoryBlobs)
    .values({ repositoryId, digest })
    .onConflictDoUpdate({ target: [repositoryBlobs.repositoryId, repositoryBlobs.digest], set: { linkedAt: sql`now()` } });
}

export async function cancelUpload(db: Database, store: BlobStore, hashes: UploadHashes, row: UploadRow): Promise<void> {
  hashes.drop(row.id);
  await db.delete(uploads).where(eq(uploads.id, row.id));
  await store.discardUpload(row.id);
}
