// HEAD/POST /api/blobs/:digest (docs/daemon.md, "Model operations"): how clients hand files to create. A blob is kept only if
// its bytes hash to the digest in the path.
import { Hono } from "hono";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { parseDigest } from "@corral/shared/digest";
import type { Store } from "../../store/store.ts";
import { DigestMismatchError } from "../../store/blobs.ts";

export function blobRoutes(store: Store): Hono {
  const app = new Hono();

  // Registered as GET because Hono dispatches HEAD to GET routes and drops the body.
  app.get("/api/blobs/:digest", async (c) => {
    let digest: string;
    try {
      digest = parseDigest(c.req.param("digest"));
    } catch {
      return c.json({ error: "invalid digest format" }, 400);
    }
    if (!(await store.blobs.has(digest))) return c.json({ error: `blob "${c.req.param("digest")}" not found` }, 404);
    return c.body(null, 200);
  });

  app.post("/api/blobs/:digest", async (c) => {
    let digest: string;
    try {
      digest = parseDigest(c.req.param("digest"));
    } catch {
      return c.json({ error: "invalid digest format" }, 400);
    }
    if (await store.blobs.has(digest)) {
      await store.blobs.touch(digest);
      return c.body(null, 200);
    }
    const body = c.req.raw.body;
    const source = body ? Readable.fromWeb(body as unknown as NodeReadableStream<Uint8Array>) : Readable.from([]);
    try {
      await store.blobs.write(source, digest);
    } catch (e) {
      if (e instanceof DigestMismatchError) return c.json({ error: e.message }, 400);
      throw e;
    }
    return c.body(null, 201);
  });

  return app;
}
