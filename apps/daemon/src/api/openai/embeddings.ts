// POST /v1/embeddings as POST /api/embed (docs/daemon.md, "OpenAI-compatible endpoints"): vectors come back as JSON floats or, with
// `encoding_format: "base64"`, as the base64 of their little-endian float32 bytes.

import { StatusError } from "../../errors.ts";
import type { NativeEmbedResponse } from "./native.ts";

type Obj = Record<string, unknown>;

export type EncodingFormat = "float" | "base64";

export type NativeEmbedRequest = {
  model: string;
  input: unknown;
  dimensions?: number;
};

/** The requested encoding, case-insensitive; anything else is OpenAI's own error text. */
export function encodingFormat(value: unknown): EncodingFormat {
  const v = typeof value === "string" ? value : "";
  if (v === "" || v.toLowerCase() === "float") return "float";
  if (v.toLowerCase() === "base64") return "base64";
  throw new StatusError(400, `Invalid value for 'encoding_format' = ${v}. Supported values: ['float', 'base64'].`);
}

/** Maps a (type-checked) OpenAI embeddings request onto the native /api/embed request. */
export function embedRequestToNative(req: Obj): NativeEmbedRequest {
  encodingFormat(req["encoding_format"]);
  let input = req["input"];
  // An empty string is one empty input; nothing at all is a mistake rather than a model load.
  if (input === "") input = [""];
  if (input === undefined || input === null || (Array.isArray(input) && input.length === 0)) throw new StatusError(400, "invalid input");
  const out: NativeEmbedRequest = { model: typeof req["model"] === "string" ? req["model"] : "", input };
  if (typeof req["dimensions"] === "number" && req["dimensions"] !== 0) out.dimensions = req["dimensions"];
  return out;
}

export function floatsToBase64(v: number[]): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  v.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return Buffer.from(bytes).toString("base64");
}

export interface EmbeddingList {
  object: "list";
  data: Array<{ object: "embedding"; embedding: number[] | string; index: number }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/** The native answer as OpenAI's list; `model` is the name as the client gave it. */
export function embeddingList(model: string, r: NativeEmbedResponse, format: EncodingFormat): EmbeddingList {
  const tokens = r.prompt_eval_count ?? 0;
  return {
    object: "list",
    data: (r.embeddings ?? []).map((e, index) => ({ object: "embedding", embedding: format === "base64" ? floatsToBase64(e) : e, index })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}
