// /api/generate (docs/daemon.md, "Generate, chat and embed") apart from HTTP: the checks in Ollama's order, load and unload requests,
// raw prompts or the assembled one (runner/prompt-assembly.ts), and the chunks of the answer, with
// the model's reasoning split off into `thinking` (runner/thinking-parser.ts).
// The native route and /v1/completions both call it.

import type { Token } from "node-llama-cpp";
import { StatusError } from "../../errors.ts";
import { acquire, continuationText, generateTokens, grammarFor, logprobsFor, promptModel, requestImages, tokenize, tokenizeContinuation } from "../../runner/inference.ts";
import type { Logprob } from "../../runner/logprob-generation.ts";
import { countWithImages, tagText } from "../../runner/vision/images.ts";
import { generateWithImages } from "../../runner/vision/vision-generation.ts";
import { assembleGenerate } from "../../runner/prompt-assembly.ts";
import { thinkingParser } from "../../runner/thinking-parser.ts";
import { modelField } from "../respond.ts";
import { BodyCheck, checkTopLogprobs, generateBody } from "./bodies.ts";
import { imagesCheck, joined, lookUpModel, metrics, now, requireCapability, thinkFor, type Generation, type Inference, type Metrics } from "./generation.ts";

export type GenerateChunk = {
  model: string;
  created_at: string;
  response: string;
  /** The reasoning in this chunk, when the model thinks (text between its template's thinking tags). */
  thinking?: string;
  done: boolean;
  done_reason?: string;
  /** Prompt and answer tokens, to continue from (not in raw mode). */
  context?: Token[];
  /** The log-probabilities of this chunk's tokens (all of them in a whole answer), when asked for. */
  logprobs?: Logprob[];
} & Partial<Metrics>;

export async function generate(deps: Inference, body: Record<string, unknown>): Promise<Generation<GenerateChunk>> {
  const started = process.hrtime.bigint();
  checkTopLogprobs(body);
  const check = BodyCheck.of(generateBody, body);
  const model = modelField(body);
  const resolved = await lookUpModel(deps, model, body["options"], new StatusError(404, "model '' not found"));
  const req = check.value();
  // `thinking` goes right after `response`, where Ollama's chunks have it.
  const chunk = (piece: { content: string; thinking: string }, done: boolean): GenerateChunk => ({
    model,
    created_at: now(),
    response: piece.content,
    ...(piece.thinking ? { thinking: piece.thinking } : {}),
    done,
  });
  const done = (reason: string, piece = { content: "", thinking: "" }): GenerateChunk => ({ ...chunk(piece, true), done_reason: reason });

  const run: Generation<GenerateChunk>["run"] = async (emit, signal) => {
    if (req.prompt === "" && req.keep_alive === 0) {
      deps.scheduler.unload(resolved.stored.digest);
      return emit(done("unload"));
    }
    const think = thinkFor(resolved, model, req.think);
    requireCapability(resolved, model, "completion", "generate");
    if (req.suffix && !resolved.capabilities.includes("insert")) throw new StatusError(400, `${resolved.stored.name.toString()} does not support insert`);
    const images = requestImages(resolved, req.images);
    const grammar = await grammarFor(req.format);
    const logprobs = logprobsFor(req, grammar);
    imagesCheck(images, grammar, logprobs);
    const lease = await acquire(deps.scheduler, resolved, req.keep_alive, signal);
    try {
      if (req.prompt === "" && req.suffix === "") return emit(done("load"));
      const count = countWithImages((s: string): number => tokenize(lease, s).length);
      // Images are tagged in the prompt as Ollama tags them; a raw prompt places its own tags.
      const prompt = req.raw ? req.prompt : tagText(req.prompt, images.length, 0);
      const text = req.raw ? req.prompt : assembleGenerate(promptModel(resolved), { ...req, prompt, think, continues: req.context !== undefined }, count);
      // The model's own template says where its thinking is, even under a request's template or raw prompt, as in Ollama.
      const parser = thinkingParser(resolved.template, { think: think.think, promptText: text });
      const onPiece = (piece: string, lp?: Logprob[]): void => emit({ ...chunk(parser ? parser.add(piece) : { content: piece, thinking: "" }, false), ...(lp?.length ? { logprobs: lp } : {}) });
      const stats =
        images.length > 0
          ? await generateWithImages(lease, !req.raw && req.context !== undefined ? continuationText(resolved, lease, { context: req.context, text }) : text, images, { options: resolved.options, onPiece, signal })
          : await generateTokens(lease, !req.raw && req.context !== undefined ? tokenizeContinuation(resolved, lease, { context: req.context, text }) : tokenize(lease, text), {
              options: resolved.options,
              grammar,
              logprobs,
              onPiece,
              signal,
            });
      emit({
        ...done(stats.doneReason, parser?.end()),
        ...(req.raw ? {} : { context: stats.tokens }),
        ...metrics(stats, started, lease.loadDurationNs),
      });
    } finally {
      lease.release();
    }
  };

  return {
    stream: req.stream,
    run,
    answer: (signal) =>
      joined(
        run,
        signal,
        (c) => ({ text: c.response, ...(c.thinking ? { thinking: c.thinking } : {}) }),
        // The joined thinking takes the place a chunk's has; the final chunk's other fields follow.
        (final, response, thinking) => ({ ...chunk({ content: response, thinking }, true), ...final, response, ...(thinking ? { thinking } : {}) }),
      ),
  };
}

