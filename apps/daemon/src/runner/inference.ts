// Running a stored model: resolve the name to its files and settings, lease a loaded runner from
// the scheduler, build the prompt and generate, streaming pieces as they come.

import { stat } from "node:fs/promises";
import type { LlamaGrammar, LlamaModel, Token } from "node-llama-cpp";
import { LRUCache } from "lru-cache";
import type { ModelOptions } from "@corral/shared/modelfile/params";
import { ModelName } from "@corral/shared/name";
import { StatusError } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { capabilities, modelDetails, readModel, type ModelContents } from "../store/model-info.ts";
import type { StoredManifest } from "../store/manifests.ts";
import { effectiveOptions, repeatWindow } from "./options.ts";
import type { Lease, LoadSpec, Scheduler } from "./scheduler.ts";
import { llamaEngine } from "./llama.ts";
import { debugLog } from "../log.ts";
import type { PromptModel } from "./prompt-assembly.ts";
import { StopMatcher } from "./stop-sequences.ts";
import { jsonSchemaGrammar } from "./json-schema-grammar.ts";
import { ggufString } from "@corral/shared/gguf/index";
import { decodeImages } from "./vision/images.ts";
import { generateWithLogprobs, type Logprob, type LogprobStep, type TokenLogprob } from "./logprob-generation.ts";

export interface ResolvedModel {
  stored: StoredManifest;
  contents: ModelContents;
  capabilities: string[];
  options: ModelOptions;
  spec: LoadSpec;
  /** TEMPLATE text to render with; undefined means `{{ .Prompt }}`. */
  template: string | undefined;
}

/** Looks a model up for inference; the messages are Ollama's (docs/daemon.md, "Generate, chat and embed"). */
export async function resolveModel(store: Store, input: string, requestOptions: unknown): Promise<ResolvedModel> {
  const name = ModelName.parse(input);
  if (!name.isValid()) throw new StatusError(400, "invalid model name");
  const stored = await store.find(name);
  if (!stored) throw new StatusError(404, `model '${input}' not found`);
  const contents = await readModel(store, stored);
  if (!contents.modelLayer) throw new StatusError(400, `model '${input}' has no model weights to run`);
  for (const p of [contents.modelLayer.path, ...contents.adapters.map((a) => a.path), ...contents.projectors.slice(0, 1).map((a) => a.path)]) {
    if (!(await stat(p).catch(() => undefined))) throw new StatusError(404, `model "${input}" not found, try pulling it first`);
  }
  const options = effectiveOptions(contents.parameters, requestOptions);
  // The projector counts as Ollama counts it, with the model: the vision worker loads it.
  let sizeBytes = 0;
  for (const p of [contents.modelLayer.path, ...contents.adapters.map((a) => a.path), ...contents.projectors.slice(0, 1).map((a) => a.path)]) sizeBytes += (await stat(p)).size;
  const spec: LoadSpec = {
    digest: stored.digest,
    name: stored.name.shortest(),
    modelPath: contents.modelLayer.path,
    adapters: contents.adapters.map((a) => a.path),
    ...(contents.projectors[0] ? { projectorPath: contents.projectors[0].path } : {}),
    numCtx: options.num_ctx,
    ...(options.num_thread > 0 ? { numThreads: options.num_thread } : {}),
    ...(options.num_batch > 0 ? { numBatch: options.num_batch } : {}),
    numGpu: options.num_gpu,
    sizeBytes,
    details: modelDetails(contents) as unknown as Record<string, unknown>,
  };
  // Without a TEMPLATE layer the GGUF's own chat template (Jinja) is used when there is one.
  const chat = contents.header ? ggufString(contents.header, "tokenizer.chat_template") : undefined;
  const template = contents.template ?? chat;
  // A DRAFT model is kept with the model, but this runtime does not decode speculatively.
  if (contents.draft) debugLog("draft model not used", { model: stored.name.shortest(), draft: contents.draft.digest });
  return { stored, contents, capabilities: capabilities(contents), options, spec, template };
}

/** The model's vocabulary, the token texts its GGUF lists (empty when it lists none). */
function vocabulary(r: ResolvedModel): readonly unknown[] {
  const tokens = r.contents.header?.kv.get("tokenizer.ggml.tokens")?.value;
  return Array.isArray(tokens) ? tokens : [];
}

/** The text of a special token (BOS, EOS) the vocabulary names by id under `key`. */
function vocabText(r: ResolvedModel, key: string): string | undefined {
  const id = r.contents.header?.kv.get(key)?.value;
  const text = typeof id === "number" ? vocabulary(r)[id] : undefined;
  return typeof text === "string" ? text : undefined;
}

/** What of the model shapes its prompts. */
export function promptModel(r: ResolvedModel): PromptModel {
  // Ollama renders such models with built-in code named in the config; without a template of its
  // own the prompt cannot be built here. (A RENDERER beside a template is stored and shown only.)
  const renderer = r.contents.config.renderer;
  if (renderer && r.template === undefined) {
    throw new StatusError(400, `${r.stored.name.shortest()} is rendered by Ollama's built-in "${renderer}" renderer, which Corral does not have; create it again with a TEMPLATE`);
  }
  const bos = vocabText(r, "tokenizer.ggml.bos_token_id");
  const eos = vocabText(r, "tokenizer.ggml.eos_token_id");
  return {
    template: r.template,
    system: r.contents.system ?? "",
    messages: r.contents.messages,
    numCtx: r.spec.numCtx,
    ...(bos ? { bosToken: bos } : {}),
    ...(eos ? { eosToken: eos } : {}),
    // Which models lose earlier answers' thinking is Ollama's rule: by family or by name.
    ...(r.contents.config.model_family === "qwen3" || r.stored.name.model === "deepseek-r1" ? { stripsPastThinking: true } : {}),
  };
}

export interface GenerationStats {
  text: string;
  doneReason: "stop" | "length";
  promptEvalCount: number;
  promptEvalDurationNs: number;
  evalCount: number;
  evalDurationNs: number;
  /** Prompt and response tokens, for generate's `context`. */
  tokens: Token[];
}

let jsonGrammar: Promise<LlamaGrammar> | undefined;

/**
 * Grammars built from JSON schemas, by the schema's text. Clients choose the schemas, so the cache
 * is bounded both by count and by the total length of the schemas it keeps (a grammar grows with
 * its schema); the least recently used go first, and a schema longer than the whole budget is
 * compiled for its request without being kept.
 */
const schemaGrammars = new LRUCache<string, Promise<LlamaGrammar>>({
  max: 64,
  maxSize: 1 << 20,
  sizeCalculation: (_grammar, schemaText) => schemaText.length,
});

/** `format`: "json" or a JSON schema object, enforced with a grammar (docs/daemon.md, "Generate, chat and embed"). */
export async function grammarFor(format: unknown): Promise<LlamaGrammar | undefined> {
  if (format === undefined || format === null || format === "") return undefined;
  const llama = await llamaEngine();
  if (format === "json") return (jsonGrammar ??= llama.getGrammarFor("json"));
  if (typeof format === "object" && !Array.isArray(format)) {
    const key = JSON.stringify(format);
    let g = schemaGrammars.get(key);
    if (!g) {
      // The schema is checked and converted first: what it cannot enforce is a 400 of its own.
      const grammar = jsonSchemaGrammar(format as Record<string, unknown>);
      const built = (g = llama.createGrammar({ grammar }));
      schemaGrammars.set(key, built);
      built.catch(() => schemaGrammars.peek(key) === built && schemaGrammars.delete(key));
    }
    try {
      return await g;
    } catch (e) {
      throw new StatusError(400, `invalid format: ${(e as Error).message}; expected "json" or a valid JSON Schema object`);
    }
  }
  throw new StatusError(400, `invalid format: ${JSON.stringify(format)}; expected "json" or a valid JSON Schema object`);
}

export function tokenize(lease: Lease, text: string): Token[] {
  return lease.runner.model.tokenize(text, true);
}

/**
 * The prompt that continues a `context` sent back: the context's text with the new prompt after it,
 * tokenized as one, as Ollama does. Appending the new prompt's own tokens instead would put a word
 * boundary of its own in front of it (SentencePiece vocabularies start every text with one), a
 * space token that was never written.
 */
export function tokenizeContinuation(r: ResolvedModel, lease: Lease, { context, text }: { context: readonly Token[]; text: string }): Token[] {
  return lease.runner.model.tokenize(continuationText(r, lease, { context, text }), true);
}

/** The text tokenizeContinuation tokenizes: the context's, checked, then the new prompt's. */
export function continuationText(r: ResolvedModel, lease: Lease, { context, text }: { context: readonly Token[]; text: string }): string {
  // A token outside the vocabulary would abort llama.cpp's detokenizer and the daemon with it.
  const size = vocabulary(r).length;
  for (const [i, t] of context.entries()) {
    if (!Number.isInteger(t) || t < 0 || t >= size) {
      throw new StatusError(400, `context[${i}] is ${t}, not a token of this model's vocabulary of ${size} tokens; send the context a previous answer returned`);
    }
  }
  return lease.runner.model.detokenize(context, true) + text;
}

/** Tokens before a piece that llama.cpp's detokenizer may need to join it correctly. */
const RECENT_TOKENS = 16;

/**
 * The text of generated tokens as Ollama writes it: each token's piece as it is, the first one's
 * leading space included. llama.cpp drops the space of the first token of a text it detokenizes
 * (SentencePiece's word-boundary rule), so the tokens are read after a one-token anchor and the
 * anchor's text is cut off; the recent tokens go with it so a character split over tokens comes
 * out whole.
 */
class PieceReader {
  private readonly anchor: Token[];

  constructor(private readonly model: LlamaModel) {
    this.anchor = model.tokenize("a", false).slice(0, 1);
  }

  read(tokens: readonly Token[], before: readonly Token[]): string {
    return this.model.detokenize(tokens, false, [...this.anchor, ...before.slice(-RECENT_TOKENS)]);
  }
}

/** Open-ended generation is bounded at this many context windows, as Ollama bounds it. */
const OPEN_ENDED_CONTEXTS = 10;

/**
 * The most tokens one generation may write: num_predict when it is set and within the bound,
 * else ten context windows. Without a bound a model that never writes its end token would hold a
 * sequence until the client gave up.
 */
export function boundedNumPredict(numPredict: number, numCtx: number): number {
  const limit = OPEN_ENDED_CONTEXTS * numCtx;
  return numPredict > 0 && numPredict <= limit ? numPredict : limit;
}

/**
 * A request's `logprobs` and `top_logprobs` as generateTokens takes them. The loop that reads
 * log-probabilities cannot apply the grammar that enforces `format`, so the two together are
 * refused (docs/daemon.md, "Log-probabilities").
 */
export function logprobsFor(req: { logprobs: boolean; top_logprobs: number }, grammar: LlamaGrammar | undefined): { top: number } | undefined {
  if (!req.logprobs) return undefined;
  if (grammar) throw new StatusError(400, "logprobs cannot be combined with format: Corral reads log-probabilities with its own sampler, which cannot enforce a grammar; send one or the other");
  return { top: req.top_logprobs };
}

export interface GenerateTokensOptions {
  /** The request's resolved model options: sampling, stop strings, num_predict. */
  options: ModelOptions;
  grammar?: LlamaGrammar | undefined;
  /**
   * Log-probabilities to report, with how many of the most likely tokens each lists (0..20);
   * undefined for none. They cannot go with a grammar (see logprobsFor).
   */
  logprobs?: { top: number } | undefined;
  /**
   * Called with UTF-8-safe text pieces as they are generated and, when log-probabilities were asked
   * for, those of the tokens whose text begins in the piece (the list may be empty; a last call
   * with no text carries those of tokens that wrote none).
   */
  onPiece: (text: string, logprobs?: Logprob[]) => void;
  signal?: AbortSignal | undefined;
}

/** A token's log-probability as the API writes it: its text, and that text's UTF-8 bytes when it has any. */
function tokenLogprob(token: string, logprob: number): TokenLogprob {
  return token === "" ? { token, logprob } : { token, logprob, bytes: [...Buffer.from(token, "utf8")] };
}

/**
 * Log-probabilities waiting for their token's text to be written: a stop sequence may hold text
 * back, and a token goes out with the first piece that shows any of its text. `start` is where the
 * token's text begins in everything generated.
 */
class PendingLogprobs {
  private readonly queue: Array<{ start: number; entry: Logprob }> = [];

  add(start: number, entry: Logprob): void {
    this.queue.push({ start, entry });
  }

  /** Those whose text begins before `written` characters (all of them with Infinity). */
  release(written: number): Logprob[] {
    const out: Logprob[] = [];
    while (this.queue.length > 0 && this.queue[0]!.start < written) out.push(this.queue.shift()!.entry);
    return out;
  }
}

/** What the two ways of generating report when they end. */
type EndReason = "maxTokens" | "eogToken" | "abort" | "stopSequence" | (string & {});

/**
 * Generates a continuation of `promptTokens` (BOS is added when the model wants one) on a
 * sequence of the leased runner, calling `onPiece` with UTF-8-safe text pieces. With
 * log-probabilities asked for it runs the loop that reads them (runner/logprob-generation.ts),
 * else node-llama-cpp's completion; the pieces, stops and bounds are the same.
 */
export async function generateTokens(lease: Lease, promptTokens: Token[], opts: GenerateTokensOptions): Promise<GenerationStats> {
  const { options, grammar, onPiece, signal } = opts;
  const { runner } = lease;
  const model = runner.model;
  // LlamaCompletion puts BOS in front itself when the model wants one; a template that already
  // wrote it (Jinja's bos_token) would otherwise give two.
  const input = [...promptTokens];
  const bos = model.tokens.bos;
  const addsBos = bos !== null && model.tokens.shouldPrependBosToken;
  if (addsBos) while (input[0] === bos) input.shift();
  const promptCount = input.length + (addsBos ? 1 : 0);
  if (promptCount >= runner.spec.numCtx) {
    throw new StatusError(400, `the prompt is ${promptCount} tokens, more than the context window of ${runner.spec.numCtx} (set num_ctx higher)`);
  }
  const seq = await runner.acquireSequence(signal);
  debugLog("generation started", { model: runner.spec.name, sequences_in_use: runner.sequencesInUse });
  let stopReason: EndReason = "error";
  let evalCount = 0;
  // Tokens made after the daemon learnt that the client left: the work should stop at once.
  let afterClientLeft = 0;
  try {
    const start = process.hrtime.bigint();
    let firstToken: bigint | undefined;
    const out: Token[] = [];
    let text = "";
    // Characters handed to the stop matcher so far, where the next token's text begins.
    let generatedChars = 0;
    const pending = opts.logprobs ? new PendingLogprobs() : undefined;
    const stops = new StopMatcher(options.stop, (piece) => {
      text += piece;
      if (pending) onPiece(piece, pending.release(text.length));
      else onPiece(piece);
    });
    const pieces = new PieceReader(model);
    /** Takes generated tokens (with their log-probabilities when asked for); true when a stop sequence completed. */
    const accept = (tokens: Token[], steps?: LogprobStep[]): boolean => {
      firstToken ??= process.hrtime.bigint();
      const piece = pieces.read(tokens, out);
      // A character split over tokens is written by the last of them; the others write nothing.
      for (const [i, step] of (steps ?? []).entries()) {
        const own = i === steps!.length - 1 ? piece : "";
        const entry: Logprob = tokenLogprob(own, step.logprob);
        if (opts.logprobs!.top > 0) entry.top_logprobs = step.top.map((t) => tokenLogprob(pieces.read([t.token], out), t.logprob));
        pending!.add(generatedChars, entry);
      }
      generatedChars += piece.length;
      out.push(...tokens);
      if (signal?.aborted) afterClientLeft += tokens.length;
      return stops.push(piece);
    };
    const maxTokens = boundedNumPredict(options.num_predict, runner.spec.numCtx);
    if (opts.logprobs) {
      // A token that ends inside a character waits for the next one, as node-llama-cpp's completion does.
      let held: LogprobStep | undefined;
      stopReason = await generateWithLogprobs(seq, input, {
        options,
        steps: runner.steps,
        maxTokens,
        topLogprobs: opts.logprobs.top,
        numCtx: runner.spec.numCtx,
        signal: signal ?? new AbortController().signal,
        onToken: (step) => {
          if (!held && model.detokenize([step.token]).endsWith("\uFFFD") && !model.isSpecialToken(step.token)) {
            held = step;
            firstToken ??= process.hrtime.bigint();
            return false;
          }
          const steps = held ? [held, step] : [step];
          held = undefined;
          return accept(
            steps.map((s) => s.token),
            steps,
          );
        },
      });
      if (held && !stops.done) accept([held.token], [held]);
    } else {
      // node-llama-cpp is loaded with the engine (llama.ts), so this import costs nothing more.
      const { LlamaCompletion } = await import("node-llama-cpp");
      const completion = new LlamaCompletion({ contextSequence: seq });
      // A stop sequence ends the generation the way a client leaving does.
      const stopped = new AbortController();
      const repeatLast = repeatWindow(options, runner.spec.numCtx);
      const ending = signal ? AbortSignal.any([signal, stopped.signal]) : stopped.signal;
      const result = await completion.generateCompletionWithMeta(input, {
        onToken: (tokens) => {
          // Tokens after a stop sequence are not the answer's (one may come before the abort lands).
          if (stops.done) return;
          if (accept(tokens)) stopped.abort();
        },
        signal: ending,
        stopOnAbortSignal: true,
        maxTokens,
        temperature: options.temperature,
        topK: options.top_k,
        topP: options.top_p,
        minP: options.min_p,
        ...(options.seed >= 0 ? { seed: options.seed } : {}),
        repeatPenalty: repeatLast > 0
          ? {
              penalty: options.repeat_penalty,
              lastTokens: repeatLast,
              frequencyPenalty: options.frequency_penalty,
              presencePenalty: options.presence_penalty,
            }
          : false,
        ...(grammar ? { grammar } : {}),
      });
      stopReason = result.metadata.stopReason;
    }
    stops.flush();
    if (pending && !stops.done) {
      // Tokens that wrote no text at the very end.
      const rest = pending.release(Infinity);
      if (rest.length > 0) onPiece("", rest);
    }
    const end = process.hrtime.bigint();
    const first = firstToken ?? end;
    evalCount = out.length;
    signal?.throwIfAborted();
    return {
      text,
      doneReason: stopReason === "maxTokens" && !stops.done ? "length" : "stop",
      promptEvalCount: promptCount,
      promptEvalDurationNs: Number(first - start),
      evalCount: out.length,
      evalDurationNs: Number(end - first),
      tokens: [...promptTokens, ...out],
    };
  } finally {
    // The model's decode counts so far say whether concurrent generations shared their batches.
    const decodes = runner.steps.counts;
    debugLog("generation ended", {
      model: runner.spec.name,
      eval_count: evalCount,
      stop_reason: stopReason,
      tokens_after_client_left: afterClientLeft,
      decodes: decodes.decodes,
      shared_decodes: decodes.shared,
      partial_decodes: decodes.partial,
      widest_decode: decodes.widest,
    });
    await runner.releaseSequence(seq);
  }
}

/**
 * A request's images, decoded within the bounds (runner/vision/images.ts), for a model that can
 * take them: one with a projector layer (docs/vision.md). A model that sees images through its own
 * file (no projector) cannot, nor can one without vision.
 */
export function requestImages(resolved: ResolvedModel, images: readonly unknown[] | undefined): Buffer[] {
  if (!images || images.length === 0) return [];
  const decoded = decodeImages(images);
  if (!resolved.capabilities.includes("vision")) throw new StatusError(400, `${resolved.stored.name.toString()} does not support vision`);
  if (!resolved.spec.projectorPath) {
    throw new StatusError(400, `${resolved.stored.name.toString()} has its vision inside the model file, which Corral cannot run; create it from a model file and a projector file (two FROM lines)`);
  }
  return decoded;
}

export function acquire(scheduler: Scheduler, resolved: ResolvedModel, keepAliveMs: number | undefined, signal?: AbortSignal): Promise<Lease> {
  return scheduler.acquire(resolved.spec, keepAliveMs, signal);
}
