// Blobs as a repository sees them: present in the store and linked to the repository.
import { and, eq, lt, sql } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { blobs, manifestBlobs, repositoryBlobs } from "../db/schema.ts";
import type { Registry } from "../registry.ts";
import { freeze, type CachedDatabase, type MemoSpec } from "./read-cache.ts";

const linkedBlob: MemoSpec<{ digest: string; size: number } | undefined> = {
  tables: [repositoryBlobs, blobs],
  max: 10_000,
};

export function findLinkedBlob({ db, reads }: CachedDatabase, repositoryId: number, digest: string): Promise<{ digest: string; size: number } | undefined> {
  return reads.read(linkedBlob, `${repositoryId}@${digest}`, async () => {
    const [row] = await db
      .select({ digest: blobs.digest, size: blobs.size })
      .from(repositoryBlobs)
      .innerJoin(blobs, eq(blobs.digest, repositoryBlobs.digest))
      .where(and(eq(repositoryBlobs.repositoryId, repositoryId), eq(repositoryBlobs.digest, digest)));
    return freeze(row);
  });
}

const TOUCH_INTERVAL_MS = 60_000;
/** Most digests Registry.blobTouches remembers; the oldest touch is forgotten first. */
const MAX_TOUCHES = 10_000;

/**
 * Marks a blob as in use so garbage collection's grace period starts again (at most once a minute).
 * Within a minute of its own last touch this process skips the statement: the database would not
 * change the row anyway, and a blob GET would otherwise write every time. Only `touched_at`
 * changes, which no memoised lookup reads, so the read cache is not told.
 */
export async function touchBlob(reg: Pick<Registry, "db" | "blobTouches">, digest: string): Promise<void> {
  const touched = reg.blobTouches;
  const now = Date.now();
  const last = touched.get(digest);
  if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
  touched.delete(digest);
  if (touched.size >= MAX_TOUCHES) touched.delete(touched.keys().next().value!);
  touched.set(digest, now);
  await reg.db
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

export async function unlinkBlob({ db, reads }: CachedDatabase, repositoryId: number, digest: string): Promise<void> {
  await reads.changing([repositoryBlobs], () => db.delete(repositoryBlobs).where(and(eq(repositoryBlobs.repositoryId, repositoryId), eq(repositoryBlobs.digest, digest))));
}
