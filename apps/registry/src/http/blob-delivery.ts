// How blob bytes reach a client. Ollama's puller needs a `Location` on the blob GET (§5.4, §5.8): a
// 307 to another host, or a 200 carrying `Location`. Generic OCI clients need the bytes or a
// redirect. So: a store that signs its own URLs on another host gets a 307; otherwise the registry
// answers 200 with the bytes and a `Location` of its own signed, token-free, ranged URL.

import type { Context, MiddlewareHandler } from "hono";
import { checkBlobURL, signBlobURL } from "../auth/secrets.ts";
import type { AppEnv } from "./env.ts";
import { openSlice, parseRange, sendFile, sendStream } from "./io.ts";
import { publicURL } from "./public-urls.ts";
import { RegistryError } from "../errors.ts";
import { BlobNotFoundError } from "../storage/blob-store.ts";
import { FilesystemBlobStore } from "../storage/filesystem.ts";

/** The registry's own blob URL: signed and expiring, usable without a bearer token. */
export function ownBlobURL(c: Context<AppEnv>, digest: string): string {
  const reg = c.var.registry;
  const expires = Math.floor(Date.now() / 1000) + reg.config.blobURLTTLSeconds;
  return `${publicURL(c)}/data/${digest}?expires=${expires}&sig=${signBlobURL(reg.secrets.urlKey, digest, expires)}`;
}

export function validBlobURL(c: Context<AppEnv>, digest: string): boolean {
  const expires = Number(c.req.query("expires") ?? "");
  const sig = c.req.query("sig") ?? "";
  if (!Number.isSafeInteger(expires) || expires < Date.now() / 1000) return false;
  return checkBlobURL(c.var.registry.secrets.urlKey, digest, expires, sig);
}

/** Middleware: redirects a blob GET to the store when the store can serve it from another host. */
export const redirectToStore: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.req.method !== "GET") return next();
  const { digest } = c.var.blob;
  const reg = c.var.registry;
  const presigned = await reg.store.presignedURL(digest, reg.config.blobURLTTLSeconds);
  const ownHost = new URL(publicURL(c)).hostname;
  if (presigned && new URL(presigned).hostname !== ownHost) {
    return c.body(null, 307, { Location: presigned, "Docker-Content-Digest": digest, "Content-Length": "0" });
  }
  // Same host: Ollama's client would follow a 307 here, so hand the URL over in a 200 instead.
  c.set("blobLocation", presigned ?? ownBlobURL(c, digest));
  return next();
};

/** Streams a blob (or the requested range of it) from the store. */
export async function serveBlob(c: Context<AppEnv>, digest: string, size: number): Promise<Response> {
  const range = parseRange(c.req.header("range"), size);
  const headers: Record<string, string> = {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest,
    "Accept-Ranges": "bytes",
    ETag: `"${digest}"`,
    "Cache-Control": "max-age=31536000",
  };
  const location = c.get("blobLocation");
  if (location) headers["Location"] = location;
  const length = range ? range.end - range.start + 1 : size;
  headers["Content-Length"] = String(length);
  if (range) headers["Content-Range"] = `bytes ${range.start}-${range.end}/${size}`;
  if (c.req.method === "HEAD" || length === 0) return c.body(null, range ? 206 : 200, headers);
  const store = c.var.registry.store;
  if (store instanceof FilesystemBlobStore) {
    // Straight from the file to the socket through reused buffers: no stream objects per chunk.
    const file = await openSlice(store.blobPath(digest), range?.start ?? 0, range ? range.end : size - 1);
    if (!file) throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is missing from storage`);
    return sendFile(c, range ? 206 : 200, headers, file);
  }
  let stream;
  try {
    stream = await store.read(digest, range);
  } catch (e) {
    if (e instanceof BlobNotFoundError) throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is missing from storage`);
    throw e;
  }
  return sendStream(c, range ? 206 : 200, headers, stream);
}
