// How blob bytes reach a client. Ollama's puller needs a `Location` on the blob GET
// (docs/protocol.md, "Downloading a blob" and "OCI distribution extras"): a 307 to another host, or
// a 200 carrying `Location`. Generic OCI clients need the bytes or a redirect. So: a store that
// signs its own URLs on another host gets a 307 (the redirect is middleware/blob-redirect.ts);
// otherwise the registry answers 200 with the bytes and a `Location` of its own signed, token-free,
// ranged URL, made and checked here.

import type { Context } from "hono";
import { checkBlobURL, signBlobURL } from "../auth/secrets.ts";
import type { AppEnv } from "./env.ts";
import { parseRange, sendFile, sendStream } from "./io.ts";
import { publicURL } from "./public-urls.ts";
import { RegistryError } from "../errors.ts";
import { BlobNotFoundError } from "../storage/blob-store.ts";

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
  const status = range ? 206 : 200;
  if (c.req.method === "HEAD" || length === 0) return c.body(null, status, headers);
  const store = c.var.registry.store;
  try {
    // A store with local files hands over a descriptor: straight from the file to the socket
    // through reused buffers, no stream objects per chunk.
    if (store.openRange) return sendFile(c, status, headers, await store.openRange(digest, range ?? { start: 0, end: size - 1 }));
    return sendStream(c, status, headers, await store.read(digest, range));
  } catch (e) {
    if (e instanceof BlobNotFoundError) throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is missing from storage`);
    throw e;
  }
}
