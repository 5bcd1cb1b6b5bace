// POST /v1/chat/completions as POST /api/chat (docs/daemon.md, "OpenAI-compatible endpoints"): the request mapped onto the native one,
// and the native answer (one object, or its chunks) mapped back to OpenAI's chat completion
// or its SSE chunks.

import { StatusError } from "../../errors.ts";
import { goTypeName, samplingOptions } from "./options.ts";
import { completionId, unixSeconds, usageOf, type NativeChatResponse, type NativeToolCall, type Usage } from "./native.ts";
import { DONE, throwIfErrorLine, type SSEEvent } from "./sse.ts";

const bad = (message: string): StatusError => new StatusError(400, message);

// ---- request ----------------------------------------------------------------------------------

export interface OpenAIToolCall {
  id: string;
  index: number;
  type: "function";
  function: { name: string; arguments: string };
}

export interface NativeMessage {
  role: string;
  content: string;
  thinking?: string;
  images?: string[];
  tool_calls?: Array<{ id?: string; function: { index: number; name: string; arguments: unknown } }>;
  tool_name?: string;
  tool_call_id?: string;
}

export type NativeChatRequest = {
  model: string;
  messages: NativeMessage[];
  format?: unknown;
  options: Record<string, unknown>;
  stream: boolean;
  tools?: unknown[];
  think?: boolean | string;
  logprobs?: boolean;
  top_logprobs?: number;
  _debug_render_only?: boolean;
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** Standard padded base64, as Go's StdEncoding accepts it (line breaks are skipped). */
function strictBase64(s: string): string | undefined {
  const clean = s.replace(/[\r\n]/g, "");
  return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(clean) ? clean : undefined;
}

const IMAGE_PREFIXES = ["data:;base64,", ...["jpeg", "jpg", "png", "webp"].map((t) => `data:image/${t};base64,`)];

/** The base64 payload of an image part's URL; only data: URLs of the image types Ollama reads. */
export function imageFromURL(url: string): string {
  if (url.startsWith("http://") || url.startsWith("https://")) {
    throw bad("image URLs are not currently supported, please use base64 encoded data instead");
  }
  const prefix = IMAGE_PREFIXES.find((p) => url.startsWith(p));
  const data = prefix === undefined ? undefined : strictBase64(url.slice(prefix.length));
  if (data === undefined) throw bad("invalid image input");
  return data;
}

/** Assistant tool calls, whose arguments arrive as a JSON string, as native calls with an object. */
function nativeToolCalls(calls: unknown): NativeMessage["tool_calls"] {
  if (!Array.isArray(calls) || calls.length === 0) return undefined;
  return calls.map((c: unknown) => {
    const tc = isObj(c) ? c : {};
    const fn = isObj(tc["function"]) ? tc["function"] : {};
    let args: unknown;
    try {
      args = JSON.parse(str(fn["arguments"]));
    } catch {
      throw bad("invalid tool call arguments");
    }
    const id = str(tc["id"]);
    return { ...(id ? { id } : {}), function: { index: 0, name: str(fn["name"]), arguments: args } };
  });
}

/** The function name of the last tool call with this id, so tool results name their tool. */
function toolNameFor(messages: unknown[], id: string): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    const calls = isObj(m) && Array.isArray(m["tool_calls"]) ? m["tool_calls"] : [];
    for (const c of calls) {
      if (isObj(c) && c["id"] === id && isObj(c["function"])) return str(c["function"]["name"]);
    }
  }
  return "";
}

/** One part of an array content as its own native message (Ollama keeps parts separate). */
function partMessage(role: string, part: unknown): NativeMessage {
  if (!isObj(part)) throw bad("invalid message format");
  switch (part["type"]) {
    case "text": {
      if (typeof part["text"] !== "string") throw bad("invalid message format");
      return { role, content: part["text"] };
    }
    case "image_url": {
      const ref = part["image_url"];
      const url = isObj(ref) ? ref["url"] : ref;
      if (typeof url !== "string") throw bad("invalid message format");
      return { role, content: "", images: [imageFromURL(url)] };
    }
    case "input_audio": {
      const audio = part["input_audio"];
      if (!isObj(audio)) throw bad("invalid input_audio format");
      if (typeof audio["data"] !== "string") throw bad("invalid input_audio format: missing data");
      const data = strictBase64(audio["data"]);
      if (data === undefined) throw bad("invalid input_audio base64 data: illegal base64 data");
      return { role, content: "", images: [data] };
    }
    default:
      throw bad("invalid message format");
  }
}

function withExtras(m: NativeMessage, extras: Partial<NativeMessage>): NativeMessage {
  const out: NativeMessage = { ...m };
  for (const [k, v] of Object.entries(extras) as Array<[keyof NativeMessage, unknown]>) {
    if (v !== undefined && v !== "") (out as unknown as Obj)[k] = v;
  }
  return out;
}

export function nativeMessages(messages: unknown[]): NativeMessage[] {
  const out: NativeMessage[] = [];
  for (const raw of messages) {
    const msg = isObj(raw) ? raw : {};
    const role = str(msg["role"]);
    const toolCallId = str(msg["tool_call_id"]);
    const toolName = role.toLowerCase() === "tool" ? str(msg["name"]) || (toolCallId ? toolNameFor(messages, toolCallId) : "") : "";
    const extras = { thinking: str(msg["reasoning"]), tool_calls: nativeToolCalls(msg["tool_calls"]), tool_name: toolName, tool_call_id: toolCallId };
    const content = msg["content"];
    if (typeof content === "string") {
      out.push(withExtras({ role, content }, extras));
    } else if (Array.isArray(content)) {
      const parts = content.map((p) => partMessage(role, p));
      // Tool calls, tool identity and reasoning belong to the message as a whole: they go on its last part.
      const last = parts.pop();
      if (last) parts.push(withExtras(last, extras));
      else if (extras.tool_calls) parts.push(withExtras({ role, content: "" }, extras));
      out.push(...parts);
    } else {
      // Content may only be left out when the message carries tool calls.
      if (!Array.isArray(msg["tool_calls"])) throw bad(`invalid message content type: ${goTypeName(content)}`);
      out.push(withExtras({ role, content: "" }, { ...extras, tool_name: "" }));
    }
  }
  return out;
}

/** `reasoning.effort` / `reasoning_effort` as a native think value; OpenAI's wider scale is clamped. */
export function thinkFromEffort(effort: string): boolean | string | undefined {
  switch (effort) {
    case "":
      return undefined;
    case "none":
      return false;
    case "minimal":
      return "low";
    case "low":
    case "medium":
    case "high":
    case "max":
      return effort;
    case "xhigh":
    case "ultra":
      return "max";
    default:
      throw bad(`invalid reasoning value: "${effort}" (must be "minimal", "low", "medium", "high", "xhigh", "ultra", "max", or "none")`);
  }
}

function formatFrom(responseFormat: unknown): unknown {
  if (!isObj(responseFormat)) return undefined;
  switch (str(responseFormat["type"]).trim().toLowerCase()) {
    case "json_object":
      return "json";
    case "json_schema": {
      const js = responseFormat["json_schema"];
      return isObj(js) && js["schema"] !== undefined && js["schema"] !== null ? js["schema"] : undefined;
    }
    default:
      return undefined;
  }
}

/** Maps a (type-checked) OpenAI chat request onto the native /api/chat request. */
export function chatRequestToNative(req: Obj): NativeChatRequest {
  const messages = Array.isArray(req["messages"]) ? req["messages"] : [];
  if (messages.length === 0) throw bad("[] is too short - 'messages'");
  const out: NativeChatRequest = {
    model: str(req["model"]),
    messages: nativeMessages(messages),
    options: samplingOptions(req, { strictStop: false, penaltiesAlways: false, topPZeroIsDefault: false }),
    stream: req["stream"] === true,
  };
  const format = formatFrom(req["response_format"]);
  if (format !== undefined) out.format = format;
  if (Array.isArray(req["tools"]) && req["tools"].length > 0) out.tools = req["tools"];
  // `reasoning`, when given at all, wins over `reasoning_effort`.
  const effort = isObj(req["reasoning"]) ? str(req["reasoning"]["effort"]) : str(req["reasoning_effort"]);
  const think = thinkFromEffort(effort);
  if (think !== undefined) out.think = think;
  if (req["logprobs"] === true) out.logprobs = true;
  if (typeof req["top_logprobs"] === "number" && req["top_logprobs"] !== 0) out.top_logprobs = req["top_logprobs"];
  if (req["_debug_render_only"] === true) out._debug_render_only = true;
  return out;
}

/** Whether the client asked for a usage chunk at the end of the stream. */
export function includeUsage(req: Obj): boolean {
  const so = req["stream_options"];
  return isObj(so) && so["include_usage"] === true;
}

// ---- response ---------------------------------------------------------------------------------

export function openAIToolCalls(calls: NativeToolCall[] | undefined): OpenAIToolCall[] {
  return (calls ?? []).map((tc) => ({
    id: tc.id ?? "",
    index: tc.function.index ?? 0,
    type: "function",
    function: { name: tc.function.name, arguments: JSON.stringify(tc.function.arguments ?? {}) },
  }));
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  system_fingerprint: "fp_ollama";
  choices: Array<{
    index: 0;
    message: { role: string; content: string; reasoning?: string; tool_calls?: OpenAIToolCall[] };
    finish_reason: string | null;
    logprobs?: { content: unknown[] };
  }>;
  usage: Usage;
  _debug_info?: unknown;
}

/** The whole (non-streamed) native answer as a chat completion. */
export function chatCompletion(id: string, r: NativeChatResponse): ChatCompletion {
  const toolCalls = openAIToolCalls(r.message?.tool_calls);
  let reason = r.done_reason ?? "";
  if (reason === "stop" && toolCalls.length > 0) reason = "tool_calls";
  const message: ChatCompletion["choices"][number]["message"] = { role: r.message?.role ?? "assistant", content: r.message?.content ?? "" };
  if (r.message?.thinking) message.reasoning = r.message.thinking;
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  const choice: ChatCompletion["choices"][number] = { index: 0, message, finish_reason: reason || null };
  if (r.logprobs?.length) choice.logprobs = { content: r.logprobs };
  const out: ChatCompletion = {
    id,
    object: "chat.completion",
    created: unixSeconds(r.created_at),
    model: r.model ?? "",
    system_fingerprint: "fp_ollama",
    choices: [choice],
    usage: usageOf(r),
  };
  if (r._debug_info !== undefined) out._debug_info = r._debug_info;
  return out;
}

export interface ChatDelta {
  role?: "assistant";
  content?: string;
  reasoning?: string;
  tool_calls?: OpenAIToolCall[];
}

export interface ChatChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint: "fp_ollama";
  choices: Array<{ index: 0; delta: ChatDelta; finish_reason: string | null; logprobs?: { content: unknown[] } }>;
  usage?: Usage;
}

/**
 * Native chat chunks as OpenAI chunks. The role appears only in the first chunk, every chunk has
 * the first chunk's `created`, a chunk with both reasoning and content is split in two, and the
 * final native chunk becomes an empty-delta chunk with the finish reason (then usage, then [DONE]).
 */
export async function* chatStreamEvents(id: string, lines: AsyncIterable<Record<string, unknown>>, withUsage: boolean): AsyncGenerator<SSEEvent> {
  let created: number | undefined;
  let first = true;
  let toolCallSent = false;
  for await (const line of lines) {
    throwIfErrorLine(line);
    const r = line as NativeChatResponse;
    created ??= unixSeconds(r.created_at);
    const chunk = (delta: ChatDelta, finish: string | null = null): ChatChunk => ({
      id,
      object: "chat.completion.chunk",
      created: created!,
      model: r.model ?? "",
      system_fingerprint: "fp_ollama",
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    const content = r.message?.content ?? "";
    const thinking = r.message?.thinking ?? "";
    const toolCalls = openAIToolCalls(r.message?.tool_calls);
    // The final native chunk usually carries nothing but metrics; OpenAI goes straight to the
    // finish chunk then. A stream whose only chunk is the final one still opens with the role.
    const emptyTrailer = r.done === true && !first && !content && !thinking && toolCalls.length === 0 && !r.logprobs?.length;
    if (!emptyTrailer) {
      const role: ChatDelta = first ? { role: "assistant" } : {};
      const body: ChatDelta = { content, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
      const logprobs = r.logprobs?.length ? { logprobs: { content: r.logprobs } } : {};
      if (thinking && (content || toolCalls.length)) {
        const reasoning = chunk({ ...role, reasoning: thinking });
        Object.assign(reasoning.choices[0]!, logprobs);
        yield reasoning;
        yield chunk(body);
      } else {
        const c = chunk({ ...role, ...body, ...(thinking ? { reasoning: thinking } : {}) });
        Object.assign(c.choices[0]!, logprobs);
        yield c;
      }
      if (toolCalls.length) toolCallSent = true;
      first = false;
    }
    if (r.done === true) {
      let reason = r.done_reason || "stop";
      if (reason === "stop" && toolCallSent) reason = "tool_calls";
      const finish = chunk({}, reason);
      yield finish;
      if (withUsage) yield { ...finish, choices: [], usage: usageOf(r) };
      yield DONE;
      return;
    }
  }
  throw new Error("the model's response ended before it was done");
}

export const newChatId = (): string => completionId("chatcmpl");
