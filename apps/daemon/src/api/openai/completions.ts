// POST /v1/completions as POST /api/generate (docs/daemon.md, "OpenAI-compatible endpoints"): a string prompt (with an optional suffix)
// in, `text_completion` objects out, streamed as SSE like chat.

import { samplingOptions } from "./options.ts";
import { completionId, unixSeconds, usageOf, type NativeGenerateResponse, type Usage } from "./native.ts";
import { DONE, throwIfErrorLine, type SSEEvent } from "./sse.ts";

type Obj = Record<string, unknown>;

export type NativeGenerateRequest = {
  model: string;
  prompt: string;
  suffix?: string;
  options: Record<string, unknown>;
  stream: boolean;
  logprobs?: boolean;
  top_logprobs?: number;
  _debug_render_only?: boolean;
};

/** Maps a (type-checked) OpenAI completion request onto the native /api/generate request. */
export function completionRequestToNative(req: Obj): NativeGenerateRequest {
  const out: NativeGenerateRequest = {
    model: typeof req["model"] === "string" ? req["model"] : "",
    prompt: typeof req["prompt"] === "string" ? req["prompt"] : "",
    options: samplingOptions(req, { strictStop: true, penaltiesAlways: true, topPZeroIsDefault: true }),
    stream: req["stream"] === true,
  };
  if (typeof req["suffix"] === "string" && req["suffix"] !== "") out.suffix = req["suffix"];
  // Here `logprobs` is a count: more than 0 turns them on and asks for that many alternatives.
  const n = req["logprobs"];
  if (typeof n === "number" && n > 0) {
    out.logprobs = true;
    out.top_logprobs = n;
  }
  if (req["_debug_render_only"] === true) out._debug_render_only = true;
  return out;
}

export interface CompletionChoice {
  text: string;
  index: 0;
  finish_reason: string | null;
}

export interface Completion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  system_fingerprint: "fp_ollama";
  choices: CompletionChoice[];
  usage?: Usage;
}

/**
 * A completion choice. `logprobs: N` is passed on (so out-of-range counts are refused), but the
 * log-probabilities are not part of a legacy completion's answer, as in Ollama's.
 */
function choiceOf(r: NativeGenerateResponse): CompletionChoice {
  return { text: r.response ?? "", index: 0, finish_reason: r.done_reason || null };
}

/** The whole (non-streamed) native answer as a completion. */
export function completion(id: string, r: NativeGenerateResponse): Completion {
  return {
    id,
    object: "text_completion",
    created: unixSeconds(r.created_at),
    model: r.model ?? "",
    system_fingerprint: "fp_ollama",
    choices: [choiceOf(r)],
    usage: usageOf(r),
  };
}

/**
 * Native generate chunks as completion chunks, one each (the final one carries the finish reason).
 * With usage requested, every chunk has a zero usage and one more chunk with `choices: []` holds the
 * real counts, as Ollama does it.
 */
export async function* completionStreamEvents(id: string, lines: AsyncIterable<Obj>, withUsage: boolean): AsyncGenerator<SSEEvent> {
  let created: number | undefined;
  for await (const line of lines) {
    throwIfErrorLine(line);
    const r = line as NativeGenerateResponse;
    created ??= unixSeconds(r.created_at);
    const chunk: Completion = {
      id,
      object: "text_completion",
      created,
      model: r.model ?? "",
      system_fingerprint: "fp_ollama",
      choices: [choiceOf(r)],
    };
    if (withUsage) chunk.usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    yield chunk;
    if (r.done === true) {
      if (withUsage) yield { ...chunk, choices: [], usage: usageOf(r) };
      yield DONE;
      return;
    }
  }
  throw new Error("the model's response ended before it was done");
}

export const newCompletionId = (): string => completionId("cmpl");
