// Blobs of mirrored repositories (docs/protocol.md, "Mirrors"): a blob a mirrored manifest names
// is fetched from the upstream when a client first asks for it, once per digest however many ask,
// and stored through the BlobStore only after it has arrived whole and matched its digest.

import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { eq } from "drizzle-orm";
import type { MirrorConfig } from "../config.ts";
import { blobs } from "../db/schema.ts";
import type { Registry } from "../registry.ts";
import { recordBlob } from "../services/uploads.ts";
import { BlobFetch } from "./blob-fetch.ts";
import { mirroredBlobSize, promoteManifestsNaming } from "./manifests.ts";

export type MirroredBlob = { stored: { digest: string; size: number } } | { stored: undefined; size: number };

/**
 * Blob `digest` of a mirrored repository that does not have it linked yet: stored already (by
 * another repository, or a fetch that just ended; now linked here), or still upstream with the
 * size its manifest gives. Undefined when no mirrored manifest of the repository names it.
 */
export async function findMirroredBlob(reg: Registry, repositoryId: number, digest: string): Promise<MirroredBlob | undefined> {
  const size = await mirroredBlobSize(reg, repositoryId, digest);
  if (size === undefined) return undefined;
  const [row] = await reg.db.select({ size: blobs.size }).from(blobs).where(eq(blobs.digest, digest));
  if (row && row.size === size) {
    await recordBlob(reg, repositoryId, digest, size);
    return { stored: { digest, size } };
  }
  return { stored: undefined, size };
}

/** The download of `digest` for repository `repo`: the one running, or a new one. */
export function fetchMirroredBlob(reg: Registry, mirror: MirrorConfig, repo: { id: number; path: string }, blob: { digest: string; size: number }): BlobFetch {
  const { digest, size } = blob;
  let mine = false;
  const started = reg.mirror.fetches.join(
    digest,
    () => {
      mine = true;
      reg.mirror.log.info(`mirror: fetching ${digest} of ${repo.path} from ${mirror.host}`, { repository: repo.path, digest, size, upstream: mirror.upstream });
      const f = new BlobFetch({
        digest,
        size,
        spoolDir: reg.mirror.spoolDir,
        open: (signal) => reg.mirror.client(mirror).blob(repo.path, digest, signal),
        commit: (path) => storeVerified(reg, repo, blob, path),
      });
      f.finished.then(
        () => reg.mirror.log.info(`mirror: stored ${digest} of ${repo.path}`, { repository: repo.path, digest, size }),
        (e: Error) => reg.mirror.log.warn(`mirror: ${digest} of ${repo.path} was not stored: ${e.message}`, { repository: repo.path, digest, upstream: mirror.upstream }),
      );
      return f;
    },
    (f) => f.finished,
  );
  // A client of another repository that shares the blob joins the same download; the blob is
  // linked to its repository too once stored.
  if (!mine) started.finished.then(() => linkAndPromote(reg, repo, digest, size)).catch(() => {});
  return started;
}

async function storeVerified(reg: Registry, repo: { id: number; path: string }, blob: { digest: string; size: number }, path: string): Promise<void> {
  const { store } = reg;
  const { digest, size } = blob;
  const existing = await store.stat(digest);
  if (!existing || existing.size !== size) {
    const id = randomUUID();
    await store.createUpload(id);
    try {
      await store.append(id, 0, createReadStream(path), { length: size });
      await store.commit(id, size, digest);
    } catch (e) {
      await store.discardUpload(id).catch(() => {});
      throw e;
    }
  }
  await linkAndPromote(reg, repo, digest, size);
}

async function linkAndPromote(reg: Registry, repo: { id: number; path: string }, digest: string, size: number): Promise<void> {
  await recordBlob(reg, repo.id, digest, size);
  await promoteManifestsNaming(reg, repo.id, digest).catch((e: unknown) =>
    reg.mirror.log.warn(`mirror: ${repo.path} could not be listed as a complete model yet`, { repository: repo.path, error: e instanceof Error ? e.message : String(e) }),
  );
}
