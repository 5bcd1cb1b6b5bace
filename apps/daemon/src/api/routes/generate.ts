// POST /api/generate and POST /api/chat (docs/daemon.md, "Generate, chat and embed"): streamed NDJSON or one JSON answer. What
// a request does is in ../handlers/generate.ts and ../handlers/chat.ts.
import { Hono, type Context } from "hono";
import { chat } from "../handlers/chat.ts";
import { generate } from "../handlers/generate.ts";
import type { Generation, Inference } from "../handlers/generation.ts";
import { jsonError, progressResponse, readJSON } from "../respond.ts";

/** Answers with the generation's chunks as NDJSON, or (stream: false) with its final chunk. */
async function respond<C extends object>(c: Context, start: (body: Record<string, unknown>) => Promise<Generation<C>>): Promise<Response> {
  let gen: Generation<C>;
  try {
    gen = await start(await readJSON(c));
  } catch (e) {
    return jsonError(c, e);
  }
  if (gen.stream) return progressResponse<C>(c, true, (emit, signal) => gen.run(emit, signal));
  return progressResponse<C>(c, false, async (emit, signal) => emit(await gen.answer(signal)));
}

export function generateRoutes(deps: Inference): Hono {
  const app = new Hono();
  app.post("/api/generate", (c) => respond(c, (body) => generate(deps, body)));
  app.post("/api/chat", (c) => respond(c, (body) => chat(deps, body)));
  return app;
}
