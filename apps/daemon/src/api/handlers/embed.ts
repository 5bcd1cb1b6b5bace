// /api/embed (batch, L2-normalised) and /api/embeddings (legacy, raw vector) (docs/daemon.md, "Generate, chat and embed") apart from
// HTTP. The native routes and /v1/embeddings call them.

import type { Lease } from "../../runner/scheduler.ts";
import { StatusError } from "../../errors.ts";
import { acquire, tokenize } from "../../runner/inference.ts";
import { BodyCheck, embedBody, embeddingsBody } from "./bodies.ts";
import { lookUpModel, type Inference } from "./generation.ts";

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

export interface EmbedResponse {
  model: string;
  embeddings: number[][];
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
}

export async function embed(deps: Inference, body: Record<string, unknown>, signal: AbortSignal): Promise<EmbedResponse> {
  const started = process.hrtime.bigint();
  const check = BodyCheck.of(embedBody, body);
  const model = typeof body["model"] === "string" ? body["model"] : "";
  const missing = new StatusError(404, "model '' not found");
  if (!model) throw missing;
  // The input is read before the model is looked up.
  check.faultsIn("input");
  const resolved = await lookUpModel(deps, model, body["options"], missing);
  const req = check.value();
  const lease = await acquire(deps.scheduler, resolved, req.keep_alive, signal);
  try {
    const embeddings: number[][] = [];
    let promptTokens = 0;
    for (const text of req.input) {
      const { vector, tokens } = await embedOne(lease, text, req.truncate);
      promptTokens += tokens;
      let v = normalize(vector);
      if (req.dimensions !== undefined && req.dimensions < v.length) v = normalize(v.slice(0, req.dimensions));
      embeddings.push(v);
    }
    return {
      model,
      embeddings,
      total_duration: Number(process.hrtime.bigint() - started),
      load_duration: lease.loadDurationNs,
      prompt_eval_count: promptTokens,
    };
  } finally {
    lease.release();
  }
}

export async function legacyEmbedding(deps: Inference, body: Record<string, unknown>, signal: AbortSignal): Promise<{ embedding: number[] }> {
  const check = BodyCheck.of(embeddingsBody, body);
  const model = typeof body["model"] === "string" ? body["model"] : "";
  const resolved = await lookUpModel(deps, model, body["options"], new StatusError(400, "model is required"));
  const req = check.value();
  const lease = await acquire(deps.scheduler, resolved, req.keep_alive, signal);
  try {
    if (req.prompt === "") return { embedding: [] };
    const { vector } = await embedOne(lease, req.prompt, true);
    return { embedding: vector };
  } finally {
    lease.release();
  }
}
