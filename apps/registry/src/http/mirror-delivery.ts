// How the bytes of a mirrored blob reach a client while they are still arriving from the upstream
// (docs/protocol.md, "Mirrors"). HEAD needs no download: the manifest gives the size. A GET joins
// the blob's one download and streams the requested range as it arrives; `Location` is the
// registry's own signed URL (routes/data.ts serves it from the same download), since the store
// cannot hand out a URL for a blob it does not hold yet.

import type { Context } from "hono";
import type { MirrorConfig } from "../config.ts";
import { RegistryError } from "../errors.ts";
import type { BlobFetch } from "../mirror/blob-fetch.ts";
import { UpstreamBlobUnknown } from "../mirror/blob-fetch.ts";
import { fetchMirroredBlob } from "../mirror/blobs.ts";
import { ownBlobURL } from "./blob-delivery.ts";
import type { AppEnv } from "./env.ts";
import { parseRange, sendStream } from "./io.ts";

function headersFor(c: Context<AppEnv>, digest: string): Record<string, string> {
  return {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest,
    "Accept-Ranges": "bytes",
    ETag: `"${digest}"`,
    Location: c.get("blobLocation") ?? ownBlobURL(c, digest),
    "Corral-Mirror": "miss",
  };
}

/** A GET or HEAD of blob `digest` of a mirrored repository that the store does not hold yet. */
export async function serveMirrorMiss(c: Context<AppEnv>, mirror: MirrorConfig, repo: { id: number; path: string }, blob: { digest: string; size: number }): Promise<Response> {
  if (c.req.method === "HEAD") return c.body(null, 200, { ...headersFor(c, blob.digest), "Content-Length": String(blob.size) });
  return serveArriving(c, fetchMirroredBlob(c.var.registry, mirror, repo, blob));
}

/** Streams the requested range of a blob from its download in flight. */
export async function serveArriving(c: Context<AppEnv>, fetch: BlobFetch): Promise<Response> {
  const { digest, size } = fetch;
  try {
    await fetch.started;
  } catch (e) {
    // Nothing was sent yet: the client gets one clear answer.
    if (e instanceof UpstreamBlobUnknown) throw new RegistryError("BLOB_UNKNOWN", `the upstream does not have blob ${digest}`).withDetail({ digest });
    throw new RegistryError("UPSTREAM_FAILED", `blob ${digest} could not be fetched from the upstream: ${(e as Error).message}; try again`);
  }
  const range = parseRange(c.req.header("range"), size);
  const headers = headersFor(c, digest);
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  headers["Content-Length"] = String(size === 0 ? 0 : end - start + 1);
  if (range) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  const status = range ? 206 : 200;
  if (c.req.method === "HEAD") return c.body(null, status, headers);
  if (size === 0) {
    await fetch.finished.catch((e: Error) => {
      throw new RegistryError("UPSTREAM_FAILED", `blob ${digest} could not be fetched from the upstream: ${e.message}; try again`);
    });
    return c.body(null, 200, headers);
  }
  // A download that ended a moment ago has handed its blob to the store: serve it from there.
  return sendStream(c, status, headers, fetch.reader(start, end) ?? (await c.var.registry.store.read(digest, range)));
}
