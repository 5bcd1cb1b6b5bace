// POST /api/generate (§7.3) and POST /api/chat (§7.4): prompt building, load/unload requests,
// streamed NDJSON or one JSON answer.
import { Hono, type Context } from "hono";
import type { Token } from "node-llama-cpp";
import type { Store } from "../../store/store.ts";
import type { Scheduler } from "../../runner/scheduler.ts";
import { StatusError } from "../../errors.ts";
import { parseKeepAlive } from "../../runner/durations.ts";
import { compileTemplate, render, renderTruncated, type RenderInput } from "../../runner/prompt.ts";
import { acquire, checkImages, generateTokens, grammarFor, resolveModel, tokenize, type GenerationStats, type ResolvedModel } from "../../runner/inference.ts";
import type { ChatMessage, ChatTool } from "../../template/index.ts";
import { jsonError, modelField, progressResponse, readJSON } from "../respond.ts";

const now = (): string => new Date().toISOString();

function metrics(stats: GenerationStats, started: bigint, loadNs: number): Record<string, number> {
  return {
    total_duration: Number(process.hrtime.bigint() - started),
    load_duration: loadNs,
    prompt_eval_count: stats.promptEvalCount,
    prompt_eval_duration: stats.promptEvalDurationNs,
    eval_count: stats.evalCount,
    eval_duration: stats.evalDurationNs,
  };
}

/** `think` is a bool or a level name (§7.2). */
function parseThink(v: unknown): { think: boolean; level: string; set: boolean } {
  if (v === undefined || v === null) return { think: false, level: "", set: false };
  if (typeof v === "boolean") return { think: v, level: v ? "medium" : "", set: true };
  if (typeof v === "string") {
    if (["high", "medium", "low", "max"].includes(v)) return { think: true, level: v, set: true };
    throw new StatusError(400, `invalid think value: "${v}" (must be "high", "medium", "low", "max", true, or false)`);
  }
  throw new StatusError(400, 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)');
}

function requireCapability(r: ResolvedModel, model: string, cap: string, verb: string): void {
  if (!r.capabilities.includes(cap)) throw new StatusError(400, `"${model}" does not support ${verb}`);
}

function toMessages(v: unknown): ChatMessage[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new StatusError(400, "messages must be a list of {role, content}");
  return v.map((m, i) => {
    const o = (m ?? {}) as Record<string, unknown>;
    if (typeof o["role"] !== "string") throw new StatusError(400, `messages[${i}].role must be a string`);
    const msg: ChatMessage = { role: o["role"].toLowerCase(), content: typeof o["content"] === "string" ? o["content"] : "" };
    if (Array.isArray(o["images"]) && o["images"].length) msg.images = o["images"];
    if (Array.isArray(o["tool_calls"]) && o["tool_calls"].length) msg.tool_calls = o["tool_calls"] as ChatMessage["tool_calls"];
    if (typeof o["tool_name"] === "string") msg.tool_name = o["tool_name"];
    if (typeof o["thinking"] === "string" && o["thinking"]) msg.thinking = o["thinking"];
    return msg;
  });
}

function vocabText(r: ResolvedModel, key: string): string | undefined {
  const h = r.contents.header;
  const id = h?.kv.get(key)?.value;
  const tokens = h?.kv.get("tokenizer.ggml.tokens")?.value;
  return typeof id === "number" && Array.isArray(tokens) && typeof tokens[id] === "string" ? (tokens[id] as string) : undefined;
}

/** Reads the body and resolves its model, or answers with the error (before any streaming). */
async function readModelRequest(c: Context, store: Store, missing: StatusError): Promise<Response | { body: Record<string, unknown>; resolved: ResolvedModel; model: string }> {
  try {
    const body = await readJSON(c);
    const model = modelField(body);
    if (!model) throw missing;
    return { body, model, resolved: await resolveModel(store, model, body["options"]) };
  } catch (e) {
    return jsonError(c, e);
  }
}

export function generateRoutes(store: Store, scheduler: Scheduler): Hono {
  const app = new Hono();

  app.post("/api/generate", async (c) => {
    const started = process.hrtime.bigint();
    const req = await readModelRequest(c, store, new StatusError(404, "model '' not found"));
    if (req instanceof Response) return req;
    const { body, resolved, model } = req;
    return respondGeneration(c, body, "generate", async (emit, signal) => {
      const raw = body["raw"] === true;
      if (raw && (body["template"] || body["system"] || body["context"])) throw new StatusError(400, "raw mode does not support template, system, or context");
      const keepAlive = parseKeepAlive(body["keep_alive"]);
      const prompt = typeof body["prompt"] === "string" ? body["prompt"] : "";
      const suffix = typeof body["suffix"] === "string" ? body["suffix"] : "";
      const think = parseThink(body["think"]);
      if (prompt === "" && keepAlive === 0) {
        scheduler.unload(resolved.stored.digest);
        return emit({ model, created_at: now(), response: "", done: true, done_reason: "unload" });
      }
      if (think.think && !resolved.capabilities.includes("thinking")) throw new StatusError(400, `"${model}" does not support thinking`);
      requireCapability(resolved, model, "completion", "generate");
      if (suffix && !resolved.capabilities.includes("insert")) throw new StatusError(400, `${resolved.stored.name.toString()} does not support insert`);
      checkImages(resolved, body["images"] as unknown[] | undefined);
      const grammar = await grammarFor(body["format"]);
      const lease = await acquire(scheduler, resolved, keepAlive, signal);
      try {
        if (prompt === "" && suffix === "") return emit({ model, created_at: now(), response: "", done: true, done_reason: "load" });
        let tokens: Token[];
        if (raw) {
          tokens = tokenize(lease, prompt);
        } else {
          const messages: ChatMessage[] = [];
          const system = typeof body["system"] === "string" && body["system"] ? body["system"] : resolved.contents.system;
          if (system) messages.push({ role: "system", content: system });
          const context = Array.isArray(body["context"]) ? (body["context"] as number[]) : undefined;
          if (!context) messages.push(...resolved.contents.messages.map((m) => ({ role: m.role, content: m.content })));
          messages.push({ role: "user", content: prompt });
          const templateText = typeof body["template"] === "string" && body["template"] ? body["template"] : (resolved.template ?? "{{ .Prompt }}");
          const t = compileTemplate(templateText);
          const input: RenderInput = { messages, prompt, suffix, think: think.think, thinkLevel: think.level, isThinkSet: think.set, ...special(resolved) };
          const text = body["template"] ? render(t, input) : renderTruncated(t, input, resolved.spec.numCtx, (s) => tokenize(lease, s).length, body["truncate"] !== false);
          tokens = [...((context ?? []) as Token[]), ...tokenize(lease, text)];
        }
        const stats = await generateTokens(lease, tokens, resolved.options, grammar, (piece) => emit({ model, created_at: now(), response: piece, done: false }), signal);
        emit({
          model,
          created_at: now(),
          response: "",
          done: true,
          done_reason: stats.doneReason,
          ...(raw ? {} : { context: stats.tokens }),
          ...metrics(stats, started, lease.loadDurationNs),
        });
      } finally {
        lease.release();
      }
    });
  });

  app.post("/api/chat", async (c) => {
    const started = process.hrtime.bigint();
    const req = await readModelRequest(c, store, new StatusError(400, "model is required"));
    if (req instanceof Response) return req;
    const { body, resolved, model } = req;
    return respondGeneration(c, body, "chat", async (emit, signal) => {
      const keepAlive = parseKeepAlive(body["keep_alive"]);
      const requestMessages = toMessages(body["messages"]);
      const tools = Array.isArray(body["tools"]) && body["tools"].length ? (body["tools"] as ChatTool[]) : undefined;
      const think = parseThink(body["think"]);
      const empty = (m: unknown): Record<string, unknown> => ({ model, created_at: now(), message: { role: "assistant", content: "" }, done: true, done_reason: m });
      if (requestMessages.length === 0 && keepAlive === 0) {
        scheduler.unload(resolved.stored.digest);
        return emit(empty("unload"));
      }
      if (tools && !resolved.capabilities.includes("tools")) throw new StatusError(400, `${resolved.stored.name.toString()} does not support tools`);
      if (think.think && !resolved.capabilities.includes("thinking")) throw new StatusError(400, `"${model}" does not support thinking`);
      requireCapability(resolved, model, "completion", "chat");
      checkImages(resolved, requestMessages.flatMap((m) => m.images ?? []));
      const grammar = await grammarFor(body["format"]);
      const lease = await acquire(scheduler, resolved, keepAlive, signal);
      try {
        if (requestMessages.length === 0) return emit(empty("load"));
        const messages: ChatMessage[] = resolved.contents.messages.map((m) => ({ role: m.role, content: m.content }));
        messages.push(...requestMessages);
        if (requestMessages[0]?.role !== "system" && resolved.contents.system) messages.unshift({ role: "system", content: resolved.contents.system });
        const t = compileTemplate(resolved.template ?? "{{ .Prompt }}");
        const input: RenderInput = { messages, ...(tools ? { tools } : {}), think: think.think, thinkLevel: think.level, isThinkSet: think.set, ...special(resolved) };
        const text = renderTruncated(t, input, resolved.spec.numCtx, (s) => tokenize(lease, s).length, body["truncate"] !== false);
        const stats = await generateTokens(lease, tokenize(lease, text), resolved.options, grammar, (piece) =>
          emit({ model, created_at: now(), message: { role: "assistant", content: piece }, done: false }), signal);
        emit({ model, created_at: now(), message: { role: "assistant", content: "" }, done: true, done_reason: stats.doneReason, ...metrics(stats, started, lease.loadDurationNs) });
      } finally {
        lease.release();
      }
    });
  });

  function special(r: ResolvedModel): { bosToken?: string; eosToken?: string } {
    const bos = vocabText(r, "tokenizer.ggml.bos_token_id");
    const eos = vocabText(r, "tokenizer.ggml.eos_token_id");
    return { ...(bos ? { bosToken: bos } : {}), ...(eos ? { eosToken: eos } : {}) };
  }

  return app;
}

type Chunk = Record<string, unknown>;

/**
 * Streams chunks as NDJSON, or (stream: false) answers with the final chunk in which the
 * pieces are joined into `response` / `message.content`.
 */
function respondGeneration(c: Context, body: Record<string, unknown>, kind: "generate" | "chat", work: (emit: (chunk: Chunk) => void, signal: AbortSignal) => Promise<void>): Promise<Response> {
  if (body["stream"] !== false) return progressResponse<Chunk>(c, true, work);
  return progressResponse<Chunk>(c, false, async (emit, signal) => {
    let text = "";
    await work((chunk) => {
      if (chunk["done"] !== true) {
        text += kind === "generate" ? (chunk["response"] as string) : ((chunk["message"] as { content: string }).content);
        return;
      }
      if (kind === "generate") emit({ ...chunk, response: text });
      else emit({ ...chunk, message: { ...(chunk["message"] as object), content: text } });
    }, signal);
  });
}
