// /v2/<ns>/<model>/blobs/<digest>: GET (and HEAD), DELETE.
import { Hono, type MiddlewareHandler } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { requireAction } from "../middleware/require-action.ts";
import { serveBlob } from "../http/blob-delivery.ts";
import { redirectToStore } from "../middleware/blob-redirect.ts";
import { findLinkedBlob, isReferenced, touchBlob, unlinkBlob } from "../services/blobs.ts";
import { parseDigestParam } from "../services/names.ts";
import { mirrorOf } from "../config.ts";
import { findMirroredBlob } from "../mirror/blobs.ts";
import { serveMirrorMiss } from "../http/mirror-delivery.ts";

const resolveBlob: MiddlewareHandler<AppEnv> = async (c, next) => {
  const digest = parseDigestParam(c.req.param("digest") ?? "");
  const repo = c.var.access.repository;
  let blob = repo ? await findLinkedBlob(c.var.registry, repo.id, digest) : undefined;
  const mirror = repo && !blob ? mirrorOf(c.var.registry.config, c.var.repo.namespace) : undefined;
  if (mirror && repo) {
    // A mirrored repository fetches what its manifests name on first request (docs/protocol.md, "Mirrors").
    const found = await findMirroredBlob(c.var.registry, repo.id, digest);
    if (found && !found.stored) return serveMirrorMiss(c, mirror, { id: repo.id, path: c.var.repo.path }, { digest, size: found.size });
    blob = found?.stored;
  }
  if (!blob) throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in ${c.var.repo.path}`).withDetail({ digest });
  c.set("blob", blob);
  await next();
};

export const blobRoutes = new Hono<AppEnv>()
  .get("/:digest", requireAction("pull"), resolveBlob, redirectToStore, async (c) => {
    const { digest, size } = c.var.blob;
    // An existence check is often the first step of a push; it keeps the blob from collection.
    await touchBlob(c.var.registry, digest);
    return serveBlob(c, digest, size);
  })
  .delete("/:digest", requireAction("delete"), resolveBlob, async (c) => {
    const repo = c.var.access.repository!;
    const { digest } = c.var.blob;
    if (await isReferenced(c.var.registry.db, repo.id, digest)) {
      throw new RegistryError("CONFLICT", `blob ${digest} is referenced by a manifest in ${c.var.repo.path}; delete the manifest first`);
    }
    await unlinkBlob(c.var.registry, repo.id, digest);
    return c.body(null, 202, { "Content-Length": "0" });
  });
