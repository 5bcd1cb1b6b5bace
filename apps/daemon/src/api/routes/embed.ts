// POST /api/embed and POST /api/embeddings (docs/daemon.md, "Generate, chat and embed"); what they do is in ../handlers/embed.ts.
import { Hono } from "hono";
import { embed, legacyEmbedding } from "../handlers/embed.ts";
import type { Inference } from "../handlers/generation.ts";
import { jsonError, readJSON } from "../respond.ts";

export function embedRoutes(deps: Inference): Hono {
  const app = new Hono();

  app.post("/api/embed", async (c) => {
    try {
      return c.json(await embed(deps, await readJSON(c), c.req.raw.signal));
    } catch (e) {
      return jsonError(c, e);
    }
  });

  app.post("/api/embeddings", async (c) => {
    try {
      return c.json(await legacyEmbedding(deps, await readJSON(c), c.req.raw.signal));
    } catch (e) {
      return jsonError(c, e);
    }
  });

  return app;
}
