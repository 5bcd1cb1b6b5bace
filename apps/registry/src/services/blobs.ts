// Blobs as a repository sees them: present in the store and linked to the repository.
import { and, eq, getTableName, lt, sql } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { blobs, manifestBlobs, repositoryBlobs } from "../db/schema.ts";
import { cachedRead, freeze, type MemoSpec } from "./read-cache.ts";

const linkedBlob: MemoSpec<{ digest: string; size: number } | undefined> = {
  tables: [getTableName(repositoryBlobs), getTableName(blobs)],
  max: 10_000,
};

export function findLinkedBlob(db: Database, repositoryId: number, digest: string): Promise<{ digest: string; size: number } | undefined> {
  return cachedRead(db, linkedBlob, `${repositoryId}@${digest}`, async () => {
    const [row] = await db
      .select({ digest: blobs.digest, size: blobs.size })
      .from(repositoryBlobs)
      .innerJoin(blobs, eq(blobs.digest, repositoryBlobs.digest))
      .where(and(eq(repositoryBlobs.repositoryId, repositoryId), eq(repositoryBlobs.digest, digest)));
    return freeze(row);
  });
}

const TOUCH_INTERVAL_MS = 60_000;
/** When this process last asked the database to touch a blob; bounded, oldest dropped first. */
const lastTouch = new WeakMap<object, Map<string, number>>();

/**
 * Marks a blob as in use so garbage collection's grace period starts again (at most once a minute).
 * Within a minute of its own last touch this process skips the statement: the database would not
 * change the row anyway, and the write would drop the cached lookups that read `blobs`.
 */
export async function touchBlob(db: Database, digest: string): Promise<void> {
  let touched = lastTouch.get(db);
  if (!touched) lastTouch.set(db, (touched = new Map()));
  const now = Date.now();
  const last = touched.get(digest);
  if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
  touched.delete(digest);
  if (touched.size >= 10_000) touched.delete(touched.keys().next().value!);
  touched.set(digest, now);
  await db
    .update(blobs)
    .set({ touchedAt: sql`now()` })
    .where(and(eq(blobs.digest, digest), lt(blobs.touchedAt, sql`now() - interval '60 seconds'`)));
}

export async function isReferenced(db: Database, repositoryId: number, digest: string): Promise<boolean> {
  const rows = await db
    .select({ d: manifestBlobs.blobDigest })
    .from(manifestBlobs)
    .where(and(eq(manifestBlobs.repositoryId, repositoryId), eq(manifestBlobs.blobDigest, digest)))
    .limit(1);
  return rows.length > 0;
}

export async function unlinkBlob(db: Database, repositoryId: number, digest: string): Promise<void> {
  await db.delete(repositoryBlobs).where(and(eq(repositoryBlobs.repositoryId, repositoryId), eq(repositoryBlobs.digest, digest)));
}
