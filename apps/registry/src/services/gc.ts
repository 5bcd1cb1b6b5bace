// Garbage collection: removes upload sessions idle past their lifetime, repository links no
// manifest needs, then blobs nothing references, and files in the store the database does not
// know. Nothing younger than the grace period is touched, so a push that has uploaded its blobs but
// not yet its manifest keeps them; blobs named by a manifest are protected by a foreign key too.

import { and, eq, lt, notExists, sql } from "drizzle-orm";
import { blobFacts, blobs, manifestBlobs, repositoryBlobs, uploads } from "../db/schema.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import type { CachedDatabase } from "./read-cache.ts";
import { expireUploads, UploadHashes } from "./uploads.ts";

export interface GCOptions {
  graceSeconds: number;
  uploadTTLSeconds: number;
  dryRun?: boolean;
}

export interface GCReport {
  uploadsRemoved: number;
  linksRemoved: number;
  blobsRemoved: number;
  bytesFreed: number;
  strayFilesRemoved: number;
  dryRun: boolean;
}

export async function collectGarbage(reg: CachedDatabase & { store: BlobStore }, opts: GCOptions): Promise<GCReport> {
  const { db, reads, store } = reg;
  const dryRun = opts.dryRun ?? false;
  const report: GCReport = { uploadsRemoved: 0, linksRemoved: 0, blobsRemoved: 0, bytesFreed: 0, strayFilesRemoved: 0, dryRun };
  const grace = sql`now() - make_interval(secs => ${opts.graceSeconds})`;
  const uploadCutoff = sql`now() - make_interval(secs => ${opts.uploadTTLSeconds})`;

  // 1. Upload sessions nobody has touched for their lifetime (serve's sweep removes them too, the
  // same way, so both may run at once).
  if (dryRun) report.uploadsRemoved = (await db.select({ id: uploads.id }).from(uploads).where(lt(uploads.updatedAt, uploadCutoff))).length;
  else report.uploadsRemoved = await expireUploads({ db, store, hashes: new UploadHashes() }, opts.uploadTTLSeconds);
  const openUploads = new Set((await db.select({ id: uploads.id }).from(uploads)).map((u) => u.id));
  const graceCutoffMs = Date.now() - opts.graceSeconds * 1000;
  for await (const u of store.listUploads()) {
    if (openUploads.has(u.id) || u.modified.getTime() > graceCutoffMs) continue;
    if (!dryRun) await store.discardUpload(u.id);
    report.strayFilesRemoved++;
  }

  // 2. Links to blobs that no manifest of the repository names.
  const unneeded = and(
    lt(repositoryBlobs.linkedAt, grace),
    notExists(
      db
        .select({ one: sql`1` })
        .from(manifestBlobs)
        .where(and(eq(manifestBlobs.repositoryId, repositoryBlobs.repositoryId), eq(manifestBlobs.blobDigest, repositoryBlobs.digest))),
    ),
  );
  if (dryRun) report.linksRemoved = (await db.select({ d: repositoryBlobs.digest }).from(repositoryBlobs).where(unneeded)).length;
  else report.linksRemoved = (await reads.changing([repositoryBlobs], () => db.delete(repositoryBlobs).where(unneeded).returning({ d: repositoryBlobs.digest }))).length;

  // 3. Blobs no manifest and no repository needs. The conditions are re-checked in the DELETE, so
  // a manifest that started referencing a blob meanwhile keeps it. The delete cascades into the
  // blobs' links (none are left) and facts.
  const unreferenced = and(
    lt(blobs.touchedAt, grace),
    notExists(db.select({ one: sql`1` }).from(manifestBlobs).where(eq(manifestBlobs.blobDigest, blobs.digest))),
    notExists(db.select({ one: sql`1` }).from(repositoryBlobs).where(eq(repositoryBlobs.digest, blobs.digest))),
  );
  const doomed = dryRun
    ? await db.select({ digest: blobs.digest, size: blobs.size }).from(blobs).where(unreferenced)
    : await reads.changing([blobs, repositoryBlobs, blobFacts], () => db.delete(blobs).where(unreferenced).returning({ digest: blobs.digest, size: blobs.size }));
  for (const b of doomed) {
    if (!dryRun) await store.delete(b.digest);
    report.blobsRemoved++;
    report.bytesFreed += b.size;
  }

  // 4. Files in the store without a database row (a crash between commit and insert).
  for await (const b of store.list()) {
    if (b.modified.getTime() > graceCutoffMs) continue;
    const [known] = await db.select({ d: blobs.digest }).from(blobs).where(eq(blobs.digest, b.digest));
    if (known) continue;
    if (!dryRun) await store.delete(b.digest);
    report.strayFilesRemoved++;
    report.bytesFreed += b.size;
  }
  return report;
}
