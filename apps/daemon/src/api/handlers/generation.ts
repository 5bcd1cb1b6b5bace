// What generate and chat share: the model lookup every refusal waits for, the capability checks,
// the metrics of a final chunk, and the two ways a generation is consumed (chunk by chunk, or as
// one answer whose pieces are joined).

import type { Store } from "../../store/store.ts";
import type { Scheduler } from "../../runner/scheduler.ts";
import { StatusError } from "../../errors.ts";
import { resolveModel, type GenerationStats, type ResolvedModel } from "../../runner/inference.ts";
import type { Logprob } from "../../runner/logprob-generation.ts";
import type { Think } from "./bodies.ts";

/** What the inference handlers work with. */
export interface Inference {
  store: Store;
  scheduler: Scheduler;
}

export type Emit<C> = (chunk: C) => void;

/** A request that passed every check that needs no loaded model, ready to run. */
export interface Generation<C> {
  /** Whether the client asked for chunks (`stream`, true unless false). */
  stream: boolean;
  /**
   * Generates, emitting chunks as they come; the last one has `done: true`. A failure before the
   * first chunk is still the request's fault (a 4xx); after it, the stream's.
   */
  run(emit: Emit<C>, signal: AbortSignal): Promise<void>;
  /** Generates to the end and answers with the final chunk, the pieces joined into it. */
  answer(signal: AbortSignal): Promise<C>;
}

export const now = (): string => new Date().toISOString();

export interface Metrics {
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

export function metrics(stats: GenerationStats, started: bigint, loadNs: number): Metrics {
  return {
    total_duration: Number(process.hrtime.bigint() - started),
    load_duration: loadNs,
    prompt_eval_count: stats.promptEvalCount,
    prompt_eval_duration: stats.promptEvalDurationNs,
    eval_count: stats.evalCount,
    eval_duration: stats.evalDurationNs,
  };
}

/** The model a request names, looked up with the request's options; `missing` answers a request without one. */
export async function lookUpModel(deps: Inference, model: string, options: unknown, missing: StatusError): Promise<ResolvedModel> {
  if (!model) throw missing;
  return resolveModel(deps.store, model, options);
}

export function requireCapability(r: ResolvedModel, model: string, cap: string, verb: string): void {
  if (!r.capabilities.includes(cap)) throw new StatusError(400, `"${model}" does not support ${verb}`);
}

export function requireThinking(r: ResolvedModel, model: string, think: boolean): void {
  if (think && !r.capabilities.includes("thinking")) throw new StatusError(400, `"${model}" does not support thinking`);
}

/**
 * The request's `think` as the template and the answer see it (docs/daemon.md, "Thinking and tool
 * calls"): a model that can think thinks unless the request says otherwise, as Ollama's does; one
 * that cannot refuses `think`.
 */
export function thinkFor(r: ResolvedModel, model: string, think: Think): Think {
  requireThinking(r, model, think.think);
  if (!think.set && r.capabilities.includes("thinking")) return { think: true, level: "medium", set: true };
  return think;
}

/** A chunk's piece of a joined answer: its text and, when the model thinks, its thinking. */
export interface ChunkText {
  text: string;
  thinking?: string;
}

/**
 * Runs `run` to the end and returns its final chunk with the text (and thinking) of every chunk
 * joined in (`text` reads a chunk's piece, `withText` puts the whole text and thinking in the final
 * chunk), and their log-probabilities, when there are any, one after another as the tokens came.
 */
export async function joined<C extends { done: boolean; logprobs?: Logprob[] }>(
  run: Generation<C>["run"],
  signal: AbortSignal,
  text: (chunk: C) => string | ChunkText,
  withText: (final: C, text: string, thinking: string) => C,
): Promise<C> {
  let whole = "";
  let thinking = "";
  const logprobs: Logprob[] = [];
  let final: C | undefined;
  await run((chunk) => {
    if (chunk.logprobs) logprobs.push(...chunk.logprobs);
    const piece = text(chunk);
    whole += typeof piece === "string" ? piece : piece.text;
    thinking += typeof piece === "string" ? "" : (piece.thinking ?? "");
    if (chunk.done) final = withText(chunk, whole, thinking);
  }, signal);
  if (!final) throw new Error("the generation ended before it was done");
  return logprobs.length > 0 ? withLogprobs(final, logprobs) : final;
}

/** `final` with `logprobs` where Ollama's answers have them: after the other fields, before the metrics. */
function withLogprobs<C extends object>(final: C, logprobs: Logprob[]): C {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(final)) {
    if (key === "total_duration") out["logprobs"] = logprobs;
    out[key] = value;
  }
  out["logprobs"] ??= logprobs;
  return out as C;
}

/**
 * The chunks of `gen` as an async iterable, once the first is there: a failure before it rejects
 * this promise (the caller can still answer with an error status), a later one is thrown by the
 * iteration. A consumer that stops early stops the generation, as `signal` does.
 */
export async function firstChunk<C>(gen: Generation<C>, signal: AbortSignal): Promise<AsyncIterable<C>> {
  const stop = new AbortController();
  const queue: C[] = [];
  let finished = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const news = (): Promise<void> => new Promise((r) => (wake = r));
  gen
    .run(
      (chunk) => {
        queue.push(chunk);
        notify();
      },
      AbortSignal.any([signal, stop.signal]),
    )
    .then(
      () => {
        finished = true;
        notify();
      },
      (error: unknown) => {
        failure = { error };
        finished = true;
        notify();
      },
    );

  while (queue.length === 0 && !finished) await news();
  if (queue.length === 0 && failure) throw failure.error;

  async function* drain(): AsyncGenerator<C> {
    try {
      for (;;) {
        while (queue.length === 0 && !finished) await news();
        if (queue.length > 0) {
          yield queue.shift()!;
          continue;
        }
        if (failure) throw failure.error;
        return;
      }
    } finally {
      if (!finished) stop.abort();
    }
  }
  return drain();
}

/**
 * What the vision worker cannot do with images (docs/vision.md, "Requests"): it samples on its own,
 * without a grammar or log-probabilities, so those are refused rather than silently dropped.
 */
export function imagesCheck(images: readonly Buffer[], grammar: unknown, logprobs: unknown): void {
  if (images.length === 0) return;
  if (grammar) throw new StatusError(400, "format cannot be combined with images: answers about images are not constrained by a grammar; send one or the other");
  if (logprobs) throw new StatusError(400, "logprobs cannot be combined with images; send one or the other");
}
