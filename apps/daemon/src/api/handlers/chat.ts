// /api/chat (docs/daemon.md, "Generate, chat and embed") apart from HTTP: the checks in Ollama's order, load and unload requests, the
// conversation assembled into a prompt (runner/prompt-assembly.ts), and the chunks of the answer.
// The native route and /v1/chat/completions both call it.

import { StatusError } from "../../errors.ts";
import { acquire, checkImages, generateTokens, grammarFor, logprobsFor, promptModel, tokenize } from "../../runner/inference.ts";
import type { Logprob } from "../../runner/logprob-generation.ts";
import { assembleChat } from "../../runner/prompt-assembly.ts";
import { modelField } from "../respond.ts";
import { BodyCheck, chatBody, checkTopLogprobs } from "./bodies.ts";
import { joined, lookUpModel, metrics, now, requireCapability, requireThinking, type Generation, type Inference, type Metrics } from "./generation.ts";

export type ChatChunk = {
  model: string;
  created_at: string;
  message: { role: "assistant"; content: string };
  done: boolean;
  done_reason?: string;
  /** The log-probabilities of this chunk's tokens (all of them in a whole answer), when asked for. */
  logprobs?: Logprob[];
} & Partial<Metrics>;

export async function chat(deps: Inference, body: Record<string, unknown>): Promise<Generation<ChatChunk>> {
  const started = process.hrtime.bigint();
  checkTopLogprobs(body);
  const check = BodyCheck.of(chatBody, body);
  const model = modelField(body);
  const resolved = await lookUpModel(deps, model, body["options"], new StatusError(400, "model is required"));
  const req = check.value();
  const chunk = (content: string, done: boolean): ChatChunk => ({ model, created_at: now(), message: { role: "assistant", content }, done });
  const done = (reason: string): ChatChunk => ({ ...chunk("", true), done_reason: reason });

  const run: Generation<ChatChunk>["run"] = async (emit, signal) => {
    if (req.messages.length === 0 && req.keep_alive === 0) {
      deps.scheduler.unload(resolved.stored.digest);
      return emit(done("unload"));
    }
    if (req.tools && !resolved.capabilities.includes("tools")) throw new StatusError(400, `${resolved.stored.name.toString()} does not support tools`);
    requireThinking(resolved, model, req.think.think);
    requireCapability(resolved, model, "completion", "chat");
    checkImages(resolved, req.messages.flatMap((m) => m.images ?? []));
    const grammar = await grammarFor(req.format);
    const logprobs = logprobsFor(req, grammar);
    const lease = await acquire(deps.scheduler, resolved, req.keep_alive, signal);
    try {
      if (req.messages.length === 0) return emit(done("load"));
      const text = assembleChat(promptModel(resolved), req, (s) => tokenize(lease, s).length);
      const stats = await generateTokens(lease, tokenize(lease, text), {
        options: resolved.options,
        grammar,
        logprobs,
        onPiece: (piece, lp) => emit({ ...chunk(piece, false), ...(lp?.length ? { logprobs: lp } : {}) }),
        signal,
      });
      emit({ ...done(stats.doneReason), ...metrics(stats, started, lease.loadDurationNs) });
    } finally {
      lease.release();
    }
  };

  return {
    stream: req.stream,
    run,
    answer: (signal) => joined(run, signal, (c) => c.message.content, (final, content) => ({ ...final, message: { ...final.message, content } })),
  };
}
