// POST /api/embed (batch, L2-normalised) and POST /api/embeddings (legacy, raw vector) (§7.5).
import { Hono } from "hono";
import type { Store } from "../../store/store.ts";
import type { Scheduler, Lease } from "../../runner/scheduler.ts";
import { StatusError } from "../../errors.ts";
import { parseKeepAlive } from "../../runner/durations.ts";
import { acquire, resolveModel, tokenize } from "../../runner/inference.ts";
import { jsonError, readJSON } from "../respond.ts";

function normalize(v: readonly number[]): number[] {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.max(Math.sqrt(sum), 1e-12);
  return v.map((x) => x / norm);
}

/** Embeds one text, cut to the context window when `truncate` allows. */
async function embedOne(lease: Lease, text: string, truncate: boolean): Promise<{ vector: number[]; tokens: number }> {
  const { runner } = lease;
  let tokens = tokenize(lease, text);
  // Leave room for the BOS/EOS tokens the embedding context adds.
  const limit = runner.spec.numCtx - 2;
  if (tokens.length > limit) {
    if (!truncate) throw new StatusError(400, "the input length exceeds the context length");
    tokens = tokens.slice(0, limit);
  }
  const e = await runner.embed((ctx) => ctx.getEmbeddingFor(tokens));
  const vector = [...e.vector];
  if (vector.some((x) => !Number.isFinite(x))) throw new StatusError(500, "embedding contains NaN or Inf values");
  return { vector, tokens: tokens.length };
}

export function embedRoutes(store: Store, scheduler: Scheduler): Hono {
  const app = new Hono();

  app.post("/api/embed", async (c) => {
    const started = process.hrtime.bigint();
    try {
      const body = await readJSON(c);
      const model = typeof body["model"] === "string" ? body["model"] : "";
      if (!model) throw new StatusError(404, "model '' not found");
      const input = body["input"];
      let inputs: string[];
      if (input === undefined || input === null || input === "") inputs = [];
      else if (typeof input === "string") inputs = [input];
      else if (Array.isArray(input) && input.every((x) => typeof x === "string")) inputs = input as string[];
      else throw new StatusError(400, "invalid input type");
      const resolved = await resolveModel(store, model, body["options"]);
      const lease = await acquire(scheduler, resolved, parseKeepAlive(body["keep_alive"]), c.req.raw.signal);
      try {
        const dims = typeof body["dimensions"] === "number" && body["dimensions"] > 0 ? Math.floor(body["dimensions"]) : undefined;
        const embeddings: number[][] = [];
        let promptTokens = 0;
        for (const text of inputs) {
          const { vector, tokens } = await embedOne(lease, text, body["truncate"] !== false);
          promptTokens += tokens;
          let v = normalize(vector);
          if (dims !== undefined && dims < v.length) v = normalize(v.slice(0, dims));
          embeddings.push(v);
        }
        return c.json({
          model,
          embeddings,
          total_duration: Number(process.hrtime.bigint() - started),
          load_duration: lease.loadDurationNs,
          prompt_eval_count: promptTokens,
        });
      } finally {
        lease.release();
      }
    } catch (e) {
      return jsonError(c, e);
    }
  });

  app.post("/api/embeddings", async (c) => {
    try {
      const body = await readJSON(c);
      const model = typeof body["model"] === "string" ? body["model"] : "";
      if (!model) throw new StatusError(400, "model is required");
      const resolved = await resolveModel(store, model, body["options"]);
      const lease = await acquire(scheduler, resolved, parseKeepAlive(body["keep_alive"]), c.req.raw.signal);
      try {
        const prompt = typeof body["prompt"] === "string" ? body["prompt"] : "";
        if (prompt === "") return c.json({ embedding: [] });
        const { vector } = await embedOne(lease, prompt, true);
        return c.json({ embedding: vector });
      } finally {
        lease.release();
      }
    } catch (e) {
      return jsonError(c, e);
    }
  });

  return app;
}
