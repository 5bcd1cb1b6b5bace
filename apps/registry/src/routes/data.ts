// GET /data/<digest>?expires=…&sig=…: the registry's own blob URL handed out in `Location`. It
// needs no bearer token (Ollama's ranged part downloads send none: docs/protocol.md, "Downloading a blob") but a valid signature.
import { Hono } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { serveBlob, validBlobURL } from "../http/blob-delivery.ts";
import { parseDigestParam } from "../services/names.ts";
import { serveArriving } from "../http/mirror-delivery.ts";

export const dataRoutes = new Hono<AppEnv>().get("/:digest", async (c) => {
  const digest = parseDigestParam(c.req.param("digest"));
  if (!validBlobURL(c, digest)) throw new RegistryError("DENIED", "this blob URL is invalid or has expired; request the blob again");
  const stat = await c.var.registry.store.stat(digest);
  // A mirrored blob still arriving from its upstream is served from its download (docs/protocol.md, "Mirrors").
  const arriving = stat ? undefined : c.var.registry.mirror.fetches.get(digest);
  if (arriving) return serveArriving(c, arriving);
  if (!stat) throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in storage`);
  return serveBlob(c, digest, stat.size);
});
