// Generation of a prompt with images (docs/vision.md, "Requests"): the loaded model's vision worker
// evaluates the prompt with the images in their places and writes the answer, which goes through
// the same stop sequences and bounds as a text answer and comes back with the same statistics.
// A stop sequence or a client that leaves stops the worker's answer between two tokens; the
// worker, with the model and projector it has loaded, stays for the next request.

import type { ModelOptions } from "@corral/shared/modelfile/params";
import type { Lease } from "../scheduler.ts";
import { boundedNumPredict, type GenerationStats } from "../inference.ts";
import { StopMatcher } from "../stop-sequences.ts";
import { debugLog } from "../../log.ts";
import { MAX_IMAGE_PIXELS, placeImages } from "./images.ts";

export interface ImageGenerationOptions {
  options: ModelOptions;
  onPiece: (text: string) => void;
  signal?: AbortSignal | undefined;
}

/**
 * Generates a continuation of `prompt`, whose `[img-N]` tags stand for `images[N]`. The stats'
 * `tokens` are those of the prompt's text and the answer: an image has no tokens to send back.
 */
export async function generateWithImages(lease: Lease, prompt: string, images: readonly Buffer[], opts: ImageGenerationOptions): Promise<GenerationStats> {
  const { runner } = lease;
  const { options, signal } = opts;
  return runner.withVision(async (w) => {
    const placed = placeImages(prompt, images, w.marker);
    let text = "";
    const stops = new StopMatcher(options.stop, (piece) => {
      text += piece;
      opts.onPiece(piece);
    });
    const onAbort = (): void => w.stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    const start = process.hrtime.bigint();
    let first: bigint | undefined;
    try {
      const result = await w.generate(
        {
          prompt: placed.prompt,
          images: placed.images,
          maxPixels: MAX_IMAGE_PIXELS,
          maxTokens: boundedNumPredict(options.num_predict, runner.spec.numCtx),
          temperature: options.temperature,
          topK: options.top_k,
          topP: options.top_p,
          minP: options.min_p,
          ...(options.seed >= 0 ? { seed: options.seed } : {}),
        },
        (piece) => {
          first ??= process.hrtime.bigint();
          // Pieces made before the worker read the stop are not the answer's.
          if (signal?.aborted) return;
          if (!stops.done && stops.push(piece)) w.stop();
        },
      ).catch((e: unknown) => {
        // A worker that did not answer the stop was killed: the answer so far is the answer.
        if (stops.done) return undefined;
        signal?.throwIfAborted();
        throw e;
      });
      stops.flush();
      const end = process.hrtime.bigint();
      const model = runner.model;
      const promptText = prompt.replace(/\[img-\d+\]/g, "");
      const answerTokens = model.tokenize(text, false);
      debugLog("generation with images ended", {
        model: runner.spec.name,
        images: placed.images.length,
        eval_count: result?.evalCount ?? answerTokens.length,
        stop_reason: result?.reason ?? "killed",
        worker_pid: w.pid,
      });
      if (!stops.done) signal?.throwIfAborted();
      return {
        text,
        doneReason: stops.done || !result || result.reason !== "length" ? "stop" : "length",
        promptEvalCount: result?.promptTokens ?? model.tokenize(promptText, true).length,
        promptEvalDurationNs: Number((first ?? end) - start),
        // A stopped answer counts the tokens of its text, as a text answer counts those it kept.
        evalCount: result && !stops.done ? result.evalCount : answerTokens.length,
        evalDurationNs: Number(end - (first ?? end)),
        tokens: [...model.tokenize(promptText, true), ...answerTokens],
      };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }, signal);
}
