// Redirecting a blob GET to the blob store, as Distribution does: the handler never learns which
// driver it has; a store that can sign URLs on another host gets the client sent there (307), and
// any other answer carries a URL in `Location` for Ollama's ranged part downloads
// (docs/protocol.md, "Downloading a blob" and "OCI distribution extras").
//
// middleware/ holds Hono middleware and the per-request helpers they are built from; the stores
// (storage/) and the URL signing (auth/secrets.ts, http/blob-delivery.ts) know nothing of routes.

import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/env.ts";
import { ownBlobURL } from "../http/blob-delivery.ts";
import { publicURL } from "../http/public-urls.ts";

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
