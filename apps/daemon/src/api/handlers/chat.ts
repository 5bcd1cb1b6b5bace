// /api/chat (docs/daemon.md, "Generate, chat and embed") apart from HTTP: the checks in Ollama's order, load and unload requests, the
// conversation assembled into a prompt (runner/prompt-assembly.ts), and the chunks of the answer:
// the model's reasoning split off into `thinking` (runner/thinking-parser.ts), then tool calls read
// from the rest into `tool_calls` (runner/tool-call-parser.ts), through one answer parser.
// The native route and /v1/chat/completions both call it.

import { randomInt } from "node:crypto";
import { StatusError } from "../../errors.ts";
import { answerParser, type ParsedPiece } from "../../runner/answer-parser.ts";
import { acquire, generateTokens, grammarFor, logprobsFor, promptModel, requestImages, tokenize } from "../../runner/inference.ts";
import type { Logprob } from "../../runner/logprob-generation.ts";
import { countWithImages, tagMessages } from "../../runner/vision/images.ts";
import { generateWithImages } from "../../runner/vision/vision-generation.ts";
import { assembleChat } from "../../runner/prompt-assembly.ts";
import { thinkingParser } from "../../runner/thinking-parser.ts";
import { toolCallsParser } from "../../runner/tool-call-tag.ts";
import type { ChatToolCall } from "../../template/index.ts";
import { modelField } from "../respond.ts";
import { BodyCheck, chatBody, checkTopLogprobs } from "./bodies.ts";
import { imagesCheck, joined, lookUpModel, metrics, now, requireCapability, thinkFor, type Generation, type Inference, type Metrics } from "./generation.ts";

/** A chunk's message, its fields in Ollama's order; `thinking` and `tool_calls` only when there are some. */
export interface ChatChunkMessage {
  role: "assistant";
  content: string;
  thinking?: string;
  tool_calls?: ChatToolCall[];
}

export type ChatChunk = {
  model: string;
  created_at: string;
  message: ChatChunkMessage;
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
  const message = (p: Pick<ParsedPiece, "content" | "thinking" | "toolCalls">): ChatChunkMessage => ({
    role: "assistant",
    content: p.content,
    ...(p.thinking ? { thinking: p.thinking } : {}),
    ...(p.toolCalls.length > 0 ? { tool_calls: p.toolCalls } : {}),
  });
  const chunk = (p: ParsedPiece, done: boolean): ChatChunk => ({ model, created_at: now(), message: message(p), done });
  const done = (reason: string, p: ParsedPiece = { content: "", thinking: "", toolCalls: [] }): ChatChunk => ({ ...chunk(p, true), done_reason: reason });

  const run: Generation<ChatChunk>["run"] = async (emit, signal) => {
    if (req.messages.length === 0 && req.keep_alive === 0) {
      deps.scheduler.unload(resolved.stored.digest);
      return emit(done("unload"));
    }
    if (req.tools && !resolved.capabilities.includes("tools")) throw new StatusError(400, `${resolved.stored.name.toString()} does not support tools`);
    const think = thinkFor(resolved, model, req.think);
    requireCapability(resolved, model, "completion", "chat");
    const images = requestImages(resolved, req.messages.flatMap((m) => m.images ?? []));
    const grammar = await grammarFor(req.format);
    const logprobs = logprobsFor(req, grammar);
    imagesCheck(images, grammar, logprobs);
    const lease = await acquire(deps.scheduler, resolved, req.keep_alive, signal);
    try {
      if (req.messages.length === 0) return emit(done("load"));
      // Each message's images are tagged where Ollama places them; those of messages truncated away go unused.
      const messages = images.length > 0 ? tagMessages(req.messages) : req.messages;
      const text = assembleChat(promptModel(resolved), { ...req, messages, think }, countWithImages((s) => tokenize(lease, s).length));
      const parser = answerParser({
        thinking: thinkingParser(resolved.template, { think: think.think, promptText: text }),
        tools: toolCallsParser({ template: resolved.template, parser: resolved.contents.config.parser }, req.tools),
      });
      const onPiece = (piece: string, lp?: Logprob[]): void => {
        const p = withIds(parser.add(piece));
        // Text the parser holds back (a tag, a call not yet whole) waits; its log-probabilities do not.
        if (p.content || p.thinking || p.toolCalls.length > 0 || lp?.length) emit({ ...chunk(p, false), ...(lp?.length ? { logprobs: lp } : {}) });
      };
      const stats =
        images.length > 0
          ? await generateWithImages(lease, text, images, { options: resolved.options, onPiece, signal })
          : await generateTokens(lease, tokenize(lease, text), { options: resolved.options, grammar, logprobs, onPiece, signal });
      // What was held back when the answer ended goes in the final chunk.
      emit({ ...done(stats.doneReason, withIds(parser.end())), ...metrics(stats, started, lease.loadDurationNs) });
    } finally {
      lease.release();
    }
  };

  return {
    stream: req.stream,
    run,
    answer: (signal) => {
      // The calls of every chunk, in order, go in the one answer, with its content and thinking joined.
      const calls: ChatToolCall[] = [];
      const collecting: Generation<ChatChunk>["run"] = (emit, s) =>
        run((c) => {
          if (c.message.tool_calls) calls.push(...c.message.tool_calls);
          emit(c);
        }, s);
      return joined(
        collecting,
        signal,
        (c) => ({ text: c.message.content, ...(c.message.thinking ? { thinking: c.message.thinking } : {}) }),
        (final, content, thinking) => ({ ...final, message: message({ content, thinking, toolCalls: calls }) }),
      );
    },
  };
}

const ID_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789";

/** `call_` and eight random letters or digits, the ids Ollama gives the calls it reads. */
export function newToolCallId(): string {
  let id = "call_";
  for (let i = 0; i < 8; i++) id += ID_LETTERS[randomInt(ID_LETTERS.length)];
  return id;
}

/** The piece with an id on each of its calls, `id` first as Ollama writes a call. */
function withIds(p: ParsedPiece): ParsedPiece {
  return p.toolCalls.length === 0 ? p : { ...p, toolCalls: p.toolCalls.map((c) => ({ id: newToolCallId(), ...c })) };
}
