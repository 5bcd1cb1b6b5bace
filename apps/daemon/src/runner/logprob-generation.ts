// Generation that reports log-probabilities (docs/daemon.md, "Log-probabilities"): a loop over
// node-llama-cpp's controlledEvaluate, one token a step (in step with the model's other
// generations, runner/decode-steps.ts), that reads the model's raw logits for the
// next position (the highest ones, those of the tokens the repeat penalty looks at, and the sum
// that normalizes them) and chooses the token from them (runner/token-sampler.ts). The values are
// the log-softmax of the raw logits, as llama-server reports them for Ollama: not the probabilities
// after temperature, top-k or penalties.

import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import type { ModelOptions } from "@corral/shared/modelfile/params";
import { byLogit, TokenSampler, type Candidate } from "./token-sampler.ts";
import { repeatWindow } from "./options.ts";
import type { DecodeSteps, StepMember } from "./decode-steps.ts";

/** One token's log-probability as the API writes it; `bytes` are the UTF-8 bytes of `token`. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes?: number[];
}

/** A generated token's log-probability, with the most likely tokens at its position when asked for. */
export interface Logprob extends TokenLogprob {
  top_logprobs?: TokenLogprob[];
}

/** What one step chose, by token id: the chosen token's log-probability and the most likely ones. */
export interface LogprobStep {
  token: Token;
  logprob: number;
  top: Array<{ token: Token; logprob: number }>;
}

export interface LogprobGenerationOptions {
  options: ModelOptions;
  /** The most tokens to write (num_predict as bounded by the caller). */
  maxTokens: number;
  /** How many of the most likely tokens each step reports (0..20). */
  topLogprobs: number;
  /** The context window, for repeat_last_n -1. */
  numCtx: number;
  /** Takes each generated token; true ends the generation (a stop sequence was written). */
  onToken: (step: LogprobStep) => boolean;
  /** Ends the generation where it is (the client left, or a stop sequence). */
  signal: AbortSignal;
  /** The model's steps, to decode in one batch with its other generations (runner/decode-steps.ts). */
  steps: DecodeSteps;
}

export type LogprobStopReason = "eogToken" | "maxTokens" | "abort" | "stopSequence";

/** Above this many logits a step asks for all of them rather than the highest ones. */
const ALL_LOGITS_FROM = 4096;

/** The token LlamaCompletion puts in front of a prompt, so both paths read the same input. */
function beginningToken(model: LlamaModel): Token | null {
  const type = model.vocabularyType;
  if (type === "rwkv" || type === "ugm") return null;
  if (type === "wpm") return model.tokens.bos;
  return model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
}

/** Tokens that end a completion besides the end-of-generation ones (Gemma's file separators), as LlamaCompletion has them. */
const extraEndTokens = new WeakMap<LlamaModel, Set<Token>>();
function endTokens(model: LlamaModel): Set<Token> {
  let set = extraEndTokens.get(model);
  if (set) return set;
  set = new Set();
  const arch = model.fileInfo.metadata?.general?.architecture;
  if (arch === "gemma" || arch === "gemma2") {
    for (const token of model.iterateAllTokens()) {
      const text = model.detokenize([token], true);
      if (text === "<|file_separator|>" || text === "<|fim_prefix|>") set.add(token);
      if (set.size === 2) break;
    }
  }
  extraEndTokens.set(model, set);
  return set;
}

/**
 * Generates after `input` (without BOS; it is put in front here when the model wants one) on an
 * empty sequence, calling `onToken` with each token and its log-probabilities.
 */
export async function generateWithLogprobs(seq: LlamaContextSequence, input: readonly Token[], opts: LogprobGenerationOptions): Promise<LogprobStopReason> {
  const { options, maxTokens, topLogprobs, onToken, signal } = opts;
  const model = seq.model;
  const bos = beginningToken(model);
  const ends = endTokens(model);
  const lastN = repeatWindow(options, opts.numCtx);
  const sampler = new TokenSampler({
    temperature: options.temperature,
    topK: options.top_k,
    topP: options.top_p,
    minP: options.min_p,
    repeatPenalty: options.repeat_penalty,
    frequencyPenalty: options.frequency_penalty,
    presencePenalty: options.presence_penalty,
    seed: options.seed >= 0 ? options.seed : undefined,
  });
  const generated: Token[] = [];
  // Context shift as node-llama-cpp's completion does it, so that answers stay the same: when the
  // window is full, the sequence is evaluated again from BOS and the latest tokens that leave a
  // tenth of the window free (the prompt is cut the same way when it is that long).
  const contextSize = seq.context.contextSize;
  const room = contextSize - Math.max(1, Math.floor(contextSize / 10)) - (bos !== null ? 1 : 0);
  const fit = (tokens: readonly Token[]): Token[] => [...(bos !== null ? [bos] : []), ...tokens.slice(Math.max(0, tokens.length - room))];
  let feed = fit(input);
  if (feed.length === 0) throw new Error("there is no prompt to continue");
  await seq.clearHistory();
  // Joined once the prompt is evaluated (runner/decode-steps.ts: a prompt is not waited for).
  let member: StepMember | undefined;
  try {
    for (;;) {
      if (signal.aborted) return "abort";
      // As node-llama-cpp's completion does: the last repeat_last_n written tokens, newlines spared.
      const recent = lastN > 0 ? generated.slice(-lastN).filter((t) => t !== model.tokens.nl) : [];
      const penalized = [...new Set(recent)];
      const needed = sampler.candidatesNeeded();
      const top = needed === undefined ? undefined : Math.max(1, topLogprobs, needed + penalized.length);
      // Every logit when choosing needs them all (top_k 0 above temperature 0) or nearly (a huge top_k).
      const logits = top === undefined || top > ALL_LOGITS_FROM ? true : { filter: { tokens: penalized, includeTop: top } };
      const last = feed.length - 1;
      if (member) await member.step();
      const results = await seq.controlledEvaluate([
        ...feed.slice(0, last),
        // Temperature 0 without penalties: llama.cpp's chain leaves the logits as the model wrote them.
        [feed[last]!, { generateNext: { options: { temperature: 0 }, logits, totalLogitWeight: true } }],
      ]);
      member ??= opts.steps.join();
      const next = results[last]?.next;
      if (!next?.logits || next.totalLogitWeight === undefined) throw new Error("the model returned no logits for the next token");
      const candidates: Candidate[] = [...next.logits].map(([token, logit]) => ({ token, logit })).sort(byLogit);
      const token = sampler.choose(candidates, recent);
      if (model.isEogToken(token) || ends.has(token)) return "eogToken";
      // log p(t) = logit(t) - log Σ exp(logit), with Σ exp(logit - max) as the model context gives it.
      const norm = candidates[0]!.logit + Math.log(next.totalLogitWeight);
      const logprobOf = (t: Token): number => (next.logits!.get(t) ?? -Infinity) - norm;
      generated.push(token);
      const stop = onToken({
        token,
        logprob: logprobOf(token),
        top: candidates.slice(0, topLogprobs).map((c) => ({ token: c.token, logprob: c.logit - norm })),
      });
      if (stop) return "stopSequence";
      if (generated.length >= maxTokens) return "maxTokens";
      if (seq.nextTokenIndex >= contextSize - 1) {
        feed = fit([...input, ...generated]);
        await seq.clearHistory();
      } else feed = [token];
    }
  } finally {
    member?.leave();
  }
}
