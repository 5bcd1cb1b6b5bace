// Blobs as a repository sees them: present in the store and linked to the repository.
import { and, eq, lt, sql } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { blobs, manifestBlobs, repositoryBlobs } from "../db/schema.ts";

export async function findLinkedBlob(db: Database, repositoryId: number, digest: string): Promise<{ digest: string; size: number } | undefined> {
  const [row] = await db
    .select({ digest: blobs.digest, size: blobs.size })
    .from(repositoryBlobs)
    .innerJoin(blobs, eq(blobs.digest, repositoryBlobs.digest))
    .where(and(eq(repositoryBlobs.repositoryId, repositoryId), eq(repositoryBlobs.digest, digest)));
  return row;
}

/** Marks a blob as in use so garbage collection's grace period starts again (at most once a minute). */
export async function touchBlob(db: Database, digest: string): Promise<void> {
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
