// POST /v1/responses as POST /api/chat (docs/daemon.md, "OpenAI-compatible endpoints"): OpenAI's
// Responses API without state. `instructions` and `input` (a string, or a list of message items)
// become native messages; the answer becomes one `response` object with a single `message` output
// item, or, streamed, the named SSE events that build that object piece by piece. Function tools
// become the native request's tools; the calls the model makes come back as `function_call` output
// items, and past calls and their results (`function_call`, `function_call_output` input items)
// become assistant tool calls and `tool` messages.

import { StatusError } from "../../errors.ts";
import { decodeStruct, go } from "./body.ts";
import { imageFromURL, openAIToolCalls, thinkFromEffort, type NativeChatRequest, type NativeMessage } from "./chat.ts";
import { unixSeconds, type NativeChatResponse, type NativeToolCall } from "./native.ts";
import { NamedEvent, throwIfErrorLine, type SSEEvent } from "./sse.ts";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const present = (v: unknown): boolean => v !== undefined && v !== null;
const bad = (message: string): StatusError => new StatusError(400, message);

// ---- request ----------------------------------------------------------------------------------

/** The one-shape-per-kind decoders report their position: `input[2]: content[0]: …`. */
function within<T>(where: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof StatusError) throw new StatusError(e.status, `${where}: ${e.message}`);
    throw e;
  }
}

// What an element is peeked at first, to learn its kind, and what each kind then decodes as. The
// anonymous structs' names are quoted in errors as Go spells them.
const itemKind = { name: String.raw`struct { Type string "json:\"type\""; Role string "json:\"role\"" }`, struct: "" };
const itemKindFields = { type: go.string, role: go.string };
const partKind = { name: String.raw`struct { Type string "json:\"type\"" }`, struct: "" };
const textPart = { name: "openai.ResponsesTextContent", struct: "ResponsesTextContent" };
const outputTextPart = { name: "openai.ResponsesOutputTextContent", struct: "ResponsesOutputTextContent" };
const imagePart = { name: "openai.ResponsesImageContent", struct: "ResponsesImageContent" };
const filePart = { name: "openai.ResponsesFileContent", struct: "ResponsesFileContent" };
const reasoningItem = { name: "openai.ResponsesReasoningInput", struct: "ResponsesReasoningInput" };
const functionCallItem = { name: "openai.ResponsesFunctionCall", struct: "ResponsesFunctionCall" };
const functionCallOutputItem = { name: "openai.ResponsesFunctionCallOutput", struct: "ResponsesFunctionCallOutput" };
const summaryPart = go.object("openai.ResponsesReasoningSummary", { type: go.string, text: go.string });

/** A list or a string, as a custom Go decoder that tries a string first says otherwise. */
function stringOrList(v: unknown, what: string): string | unknown[] {
  if (v === null || typeof v === "string") return v ?? "";
  if (Array.isArray(v)) return v;
  const kind = typeof v === "number" ? "number" : typeof v === "boolean" ? "bool" : "object";
  throw bad(`${what} must be a string or array: json: cannot unmarshal ${kind} into Go value of type []json.RawMessage`);
}

/** A content part as decoded: nothing is converted or refused until the whole input has decoded. */
type Part = { text: string } | { imageURL: string } | { file: true } | { skip: true };

function contentPart(raw: unknown): Part {
  const type = str(decodeStruct(raw, partKind, { type: go.string })["type"]);
  switch (type) {
    case "input_text":
      return { text: str(decodeStruct(raw, textPart, { type: go.string, text: go.string })["text"]) };
    case "output_text":
      return { text: str(decodeStruct(raw, outputTextPart, { type: go.string, text: go.string })["text"]) };
    case "input_image": {
      const url = str(decodeStruct(raw, imagePart, { type: go.string, detail: go.string, file_id: go.string, image_url: go.string })["image_url"]);
      // An image given only by a file id has nothing to send.
      return url ? { imageURL: url } : { skip: true };
    }
    case "input_file":
      decodeStruct(raw, filePart, { type: go.string, file_data: go.string, file_id: go.string, file_url: go.string, filename: go.string });
      return { file: true };
    default:
      throw bad(`unknown content type: ${type}`);
  }
}

/** A message's content: a string is one text part. */
function contentParts(content: unknown): Part[] {
  const parts = stringOrList(content, "content");
  if (typeof parts === "string") return [{ text: parts }];
  return parts.map((p, i) => within(`content[${i}]`, () => contentPart(p)));
}

/** An input item as decoded. */
type Item =
  | { kind: "message"; role: string; parts: Part[] }
  | { kind: "reasoning"; thinking: string }
  | { kind: "call"; callId: string; name: string; arguments: string }
  | { kind: "output"; callId: string; parts: Part[] }
  | { kind: "skip" };

function inputItem(raw: unknown): Item {
  const head = decodeStruct(raw, itemKind, itemKindFields);
  let type = str(head["type"]);
  // A bare {role, content} is a message, as OpenAI's clients send it.
  if (type === "" && str(head["role"]) !== "") type = "message";
  const item = raw as Obj;
  switch (type) {
    case "message":
      return { kind: "message", role: str(item["role"]), parts: present(item["content"]) ? contentParts(item["content"]) : [] };
    case "reasoning": {
      const r = decodeStruct(raw, reasoningItem, { id: go.string, summary: go.slice(summaryPart), encrypted_content: go.string });
      return { kind: "reasoning", thinking: str(r["encrypted_content"]) };
    }
    case "web_search_call":
      // A past built-in search is history only; the assistant message after it carries its result.
      return { kind: "skip" };
    case "function_call": {
      const c = decodeStruct(raw, functionCallItem, { id: go.string, type: go.string, call_id: go.string, name: go.string, arguments: go.string });
      return { kind: "call", callId: str(c["call_id"]), name: str(c["name"]), arguments: str(c["arguments"]) };
    }
    case "function_call_output": {
      const o = decodeStruct(raw, functionCallOutputItem, { type: go.string, call_id: go.string, output: go.any });
      // The output is a string, or content parts whose texts are joined.
      const output = present(o["output"]) ? stringOrList(o["output"], "output") : "";
      const parts = typeof output === "string" ? [{ text: output }] : output.map((p, i) => within(`output[${i}]`, () => contentPart(p)));
      return { kind: "output", callId: str(o["call_id"]), parts };
    }
    case "":
      throw bad("input item missing required 'type' field");
    default:
      throw bad(`unknown input item type: ${JSON.stringify(type)}`);
  }
}

/** A message's parts as one native message: the texts joined, the images decoded, files refused. */
function nativeMessage(role: string, parts: Part[]): NativeMessage {
  let content = "";
  const images: string[] = [];
  for (const p of parts) {
    if ("text" in p) content += p.text;
    else if ("imageURL" in p) images.push(imageFromURL(p.imageURL));
    else if ("file" in p) throw bad("file inputs are not currently supported");
  }
  return images.length > 0 ? { role, content, images } : { role, content };
}

/**
 * `instructions` then `input` as native messages. Reasoning handed back with a past turn is that
 * turn's thinking: it goes on the next assistant message (or on one of its own at the end).
 */
function inputMessages(req: Obj): NativeMessage[] {
  const input = stringOrList(req["input"] ?? null, "input");
  const items = typeof input === "string" ? [] : input.map((raw, i) => within(`input[${i}]`, () => inputItem(raw)));
  const out: NativeMessage[] = [];
  const instructions = str(req["instructions"]);
  if (instructions) out.push({ role: "system", content: instructions });
  if (typeof input === "string" && input) out.push({ role: "user", content: input });
  let thinking = "";
  for (const [i, item] of items.entries()) {
    if (item.kind === "reasoning") thinking = item.thinking;
    if (item.kind === "call") {
      // A call joins the assistant message before it, or opens one.
      const last = out[out.length - 1];
      const message = last?.role === "assistant" ? last : { role: "assistant", content: "" };
      (message.tool_calls ??= []).push(toolCallOf(item));
      if (thinking) {
        message.thinking = thinking;
        thinking = "";
      }
      if (message !== last) out.push(message);
    }
    if (item.kind === "output") out.push({ ...nativeMessage("tool", item.parts), tool_call_id: item.callId });
    if (item.kind !== "message") continue;
    const message = nativeMessage(item.role, item.parts);
    if (message.role === "assistant" && thinking) {
      message.thinking = thinking;
      thinking = "";
    }
    if (!joinsCall(out, message, items[i + 1])) out.push(message);
  }
  if (thinking) out.push({ role: "assistant", content: "", thinking });
  return out;
}

/** A past call as a native one; its arguments, a JSON string, must hold an object. */
function toolCallOf(item: Extract<Item, { kind: "call" }>): NonNullable<NativeMessage["tool_calls"]>[number] {
  let args: unknown = {};
  if (item.arguments) {
    try {
      args = JSON.parse(item.arguments);
    } catch (e) {
      throw bad(`failed to parse function call arguments: ${(e as Error).message}`);
    }
    if (!isObj(args)) throw bad("failed to parse function call arguments: not a JSON object");
  }
  return { id: item.callId, function: { index: 0, name: item.name, arguments: args } };
}

/**
 * Responses may replay an assistant message between a call and its result; it joins the call's
 * message (content on a line of its own), so that the result follows the call it answers.
 */
function joinsCall(out: NativeMessage[], message: NativeMessage, next: Item | undefined): boolean {
  const last = out[out.length - 1];
  if (message.role !== "assistant" || next?.kind !== "output" || last?.role !== "assistant") return false;
  if (!last.tool_calls?.some((c) => c.id === next.callId)) return false;
  if (last.content && message.content) last.content += "\n";
  last.content += message.content;
  if (message.images) last.images = [...(last.images ?? []), ...message.images];
  if (message.thinking) last.thinking = message.thinking;
  return true;
}

/** How deep `namespace` tools may nest. */
const MAX_NAMESPACE_DEPTH = 8;

/**
 * A Responses tool as native tools: a function as `{type, function: {name, description,
 * parameters}}`, a namespace as its members, their names prefixed with its own.
 */
function nativeTools(t: unknown, depth = 0): Array<{ type: string; function: { name: string; description: string; parameters: Obj } }> {
  const tool = isObj(t) ? t : {};
  const type = str(tool["type"]);
  if (type === "web_search") throw bad("web_search tools are not supported");
  if (type !== "namespace") {
    const parameters = isObj(tool["parameters"]) ? tool["parameters"] : {};
    return [{ type, function: { name: str(tool["name"]), description: str(tool["description"]), parameters } }];
  }
  if (depth >= MAX_NAMESPACE_DEPTH) throw bad(`namespace tools nest deeper than ${MAX_NAMESPACE_DEPTH}`);
  const prefix = str(tool["name"]) ? `${str(tool["name"])}.` : "";
  const members = Array.isArray(tool["tools"]) ? tool["tools"] : [];
  return members.flatMap((m) => nativeTools(m, depth + 1)).map((x) => (prefix && !x.function.name.startsWith(prefix) ? { ...x, function: { ...x.function, name: prefix + x.function.name } } : x));
}

/** A JSON schema in `text.format` constrains the output; other formats leave it free. */
function formatOf(req: Obj): unknown {
  const format = isObj(req["text"]) ? req["text"]["format"] : undefined;
  if (!isObj(format) || format["type"] !== "json_schema") return undefined;
  return present(format["schema"]) ? format["schema"] : undefined;
}

/** Maps a (type-checked) Responses request onto the native /api/chat request. */
export function responsesRequestToNative(req: Obj): NativeChatRequest {
  const messages = inputMessages(req);
  // OpenAI's default temperature is 1.0; top_p is left to the model unless given.
  const options: Obj = { temperature: present(req["temperature"]) ? req["temperature"] : 1.0 };
  if (present(req["top_p"])) options["top_p"] = req["top_p"];
  if (present(req["max_output_tokens"])) options["num_predict"] = req["max_output_tokens"];
  const out: NativeChatRequest = { model: str(req["model"]), messages, options, stream: req["stream"] === true };
  const think = thinkFromEffort(isObj(req["reasoning"]) ? str(req["reasoning"]["effort"]) : "");
  if (think !== undefined) out.think = think;
  const tools = Array.isArray(req["tools"]) ? req["tools"].flatMap((t) => nativeTools(t)) : [];
  if (tools.length > 0) out.tools = tools;
  const format = formatOf(req);
  if (format !== undefined) out.format = format;
  return out;
}

// ---- response ---------------------------------------------------------------------------------

/** What every object of one response shares: its ids and the request it echoes. */
export interface ResponseContext {
  id: string;
  itemId: string;
  request: Obj;
}

const randomId = (prefix: string): string => `${prefix}_${Math.floor(Math.random() * 999999)}`;

export function newResponseContext(request: Obj): ResponseContext {
  return { id: randomId("resp"), itemId: randomId("msg"), request };
}

export interface OutputText {
  type: "output_text";
  text: string;
  annotations: never[];
  logprobs: never[];
}

export interface MessageItem {
  id: string;
  type: "message";
  status: "in_progress" | "completed";
  role: "assistant";
  content: OutputText[];
}

/** A call the model made: its `call_id` is the native call's id, its arguments a JSON string. */
export interface FunctionCallItem {
  id: string;
  type: "function_call";
  status: "in_progress" | "completed";
  call_id: string;
  name: string;
  arguments: string;
}

/** The model's thinking as an output item: the summary and, in the clear, the encrypted content, as Ollama gives it. */
export interface ReasoningItem {
  id: string;
  type: "reasoning";
  summary: Array<{ type: "summary_text"; text: string }>;
  encrypted_content: string;
}

type OutputItem = ReasoningItem | MessageItem | FunctionCallItem;

const reasoningOutput = (id: string, thinking: string): ReasoningItem => ({ id, type: "reasoning", summary: [{ type: "summary_text", text: thinking }], encrypted_content: thinking });

/** The native calls as function-call items, `fc_<response id>_<n>`, counting from `first`. */
function functionCallItems(ctx: ResponseContext, calls: NativeToolCall[] | undefined, first = 0): FunctionCallItem[] {
  return openAIToolCalls(calls).map((tc, i) => ({ id: `fc_${ctx.id}_${first + i}`, type: "function_call", status: "completed", call_id: tc.id, name: tc.function.name, arguments: tc.function.arguments }));
}

/** The request's tools as the response echoes them. */
function toolsEcho(req: Obj): Obj[] {
  const tools = Array.isArray(req["tools"]) ? req["tools"] : [];
  return tools.map((raw: unknown) => {
    const t = isObj(raw) ? raw : {};
    const out: Obj = {
      type: str(t["type"]),
      name: str(t["name"]),
      description: typeof t["description"] === "string" ? t["description"] : null,
      strict: typeof t["strict"] === "boolean" ? t["strict"] : null,
      parameters: isObj(t["parameters"]) ? t["parameters"] : null,
    };
    if (Array.isArray(t["tools"]) && t["tools"].length > 0) out["tools"] = t["tools"];
    return out;
  });
}

export interface ResponsesUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens_details: { reasoning_tokens: number };
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete";

/** The `response` object; `reasoning` and `text.format` echo the request. */
export interface ResponseObject {
  id: string;
  object: "response";
  created_at: number;
  completed_at: number | null;
  status: ResponseStatus;
  incomplete_details: { reason: string } | null;
  model: string;
  previous_response_id: null;
  instructions: string | null;
  output: OutputItem[];
  error: null;
  tools: Obj[];
  tool_choice: "auto";
  truncation: string;
  parallel_tool_calls: true;
  text: { format: Obj };
  top_p: number;
  presence_penalty: 0;
  frequency_penalty: 0;
  top_logprobs: 0;
  temperature: number;
  reasoning: { effort?: string | null; summary?: string | null } | null;
  usage: ResponsesUsage | null;
  max_output_tokens: number | null;
  max_tool_calls: null;
  store: false;
  background: boolean;
  service_tier: "default";
  metadata: Obj;
  safety_identifier: null;
  prompt_cache_key: null;
}

const outputText = (text: string): OutputText => ({ type: "output_text", text, annotations: [], logprobs: [] });

function messageItem(id: string, text: string | undefined): MessageItem {
  if (text === undefined) return { id, type: "message", status: "in_progress", role: "assistant", content: [] };
  return { id, type: "message", status: "completed", role: "assistant", content: [outputText(text)] };
}

function usageOf(r: NativeChatResponse): ResponsesUsage {
  const input = r.prompt_eval_count ?? 0;
  const output = r.eval_count ?? 0;
  return {
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens_details: { reasoning_tokens: 0 },
  };
}

/** `text.format` as asked for (only its known fields), plain text when not. */
function textFormat(req: Obj): Obj {
  const format = isObj(req["text"]) ? req["text"]["format"] : undefined;
  if (!isObj(format)) return { type: "text" };
  const out: Obj = { type: str(format["type"]) };
  if (str(format["name"])) out["name"] = format["name"];
  if (present(format["schema"])) out["schema"] = format["schema"];
  if (typeof format["strict"] === "boolean") out["strict"] = format["strict"];
  return out;
}

/**
 * `reasoning` as asked for, or null. The whole answer leaves out what was not asked; the streamed
 * objects write it as null.
 */
function reasoningEcho(req: Obj, nulls: boolean): ResponseObject["reasoning"] {
  const r = isObj(req["reasoning"]) ? req["reasoning"] : {};
  const effort = str(r["effort"]);
  const summary = str(r["summary"]);
  if (!effort && !summary) return null;
  const out: ResponseObject["reasoning"] = {};
  if (effort || nulls) out.effort = effort || null;
  if (summary || nulls) out.summary = summary || null;
  return out;
}

const num = (v: unknown, fallback: number): number => (typeof v === "number" ? v : fallback);

/** A length limit ends the answer early: OpenAI calls that incomplete, for want of output tokens. */
function finished(r: NativeChatResponse): Pick<ResponseObject, "status" | "incomplete_details"> {
  if (r.done_reason === "length") return { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } };
  return { status: "completed", incomplete_details: null };
}

interface ResponseState {
  createdAt: number;
  status: ResponseStatus;
  incompleteDetails?: { reason: string } | null;
  output: OutputItem[];
  usage: ResponsesUsage | null;
  /** Whether the object is one of a stream's (see reasoningEcho). */
  streamed: boolean;
}

function responseObject(ctx: ResponseContext, s: ResponseState): ResponseObject {
  const req = ctx.request;
  return {
    id: ctx.id,
    object: "response",
    created_at: s.createdAt,
    completed_at: s.status === "completed" ? Math.floor(Date.now() / 1000) : null,
    status: s.status,
    incomplete_details: s.incompleteDetails ?? null,
    model: str(req["model"]),
    previous_response_id: null,
    instructions: str(req["instructions"]) || null,
    output: s.output,
    error: null,
    tools: toolsEcho(req),
    tool_choice: "auto",
    truncation: typeof req["truncation"] === "string" ? req["truncation"] : "disabled",
    parallel_tool_calls: true,
    text: { format: textFormat(req) },
    top_p: num(req["top_p"], 1.0),
    presence_penalty: 0,
    frequency_penalty: 0,
    top_logprobs: 0,
    temperature: num(req["temperature"], 1.0),
    reasoning: reasoningEcho(req, s.streamed),
    usage: s.usage,
    max_output_tokens: typeof req["max_output_tokens"] === "number" ? req["max_output_tokens"] : null,
    max_tool_calls: null,
    store: false,
    background: req["background"] === true,
    service_tier: "default",
    metadata: {},
    safety_identifier: null,
    prompt_cache_key: null,
  };
}

/** The whole (non-streamed) native answer as a response: its calls as function-call items, else one message item. */
export function responseFromAnswer(ctx: ResponseContext, r: NativeChatResponse): ResponseObject {
  const end = finished(r);
  const calls = functionCallItems(ctx, r.message?.tool_calls);
  return responseObject(ctx, {
    createdAt: unixSeconds(r.created_at),
    status: end.status,
    incompleteDetails: end.incomplete_details,
    output: [
      // The thinking, when there is some, comes first (docs/daemon.md, "Thinking and tool calls").
      ...(r.message?.thinking ? [reasoningOutput(`rs_${ctx.id}`, r.message.thinking)] : []),
      ...(calls.length > 0 ? calls : [messageItem(ctx.itemId, r.message?.content ?? "")]),
    ],
    usage: usageOf(r),
    streamed: false,
  });
}

/**
 * Native chat chunks as Responses events, each with the next `sequence_number`: the response
 * created and in progress; with the first text, the message item and its text part added; a
 * delta per piece; at the end the text, part and item done and the response completed (or
 * incomplete when a length limit ended it). An answer without text has no message item. A chunk
 * with calls adds a function-call item per call, whole (added, its arguments as one delta, done);
 * text after a call is not sent, as Ollama sends none. Thinking is a `reasoning` item first (added,
 * a summary-text delta per piece, done before the first text or call). A failure once the stream is
 * under way is an `error` event, the stream's last.
 */
export async function* responseStreamEvents(ctx: ResponseContext, lines: AsyncIterable<Obj>): AsyncGenerator<SSEEvent> {
  let sequence = 0;
  const event = (type: string, data: Obj): NamedEvent => new NamedEvent(type, { type, sequence_number: sequence++, ...data });
  const at = (): Obj => ({ item_id: ctx.itemId, output_index: messageIndex, content_index: 0 });
  let createdAt: number | undefined;
  let text: string | undefined;
  /** Where the message item stands among the output items, once it is added. */
  let messageIndex = 0;
  const calls: FunctionCallItem[] = [];
  /** The thinking's item: the first of the output, added with the first thinking and done before anything else. */
  let reasoning: { id: string; text: string; open: boolean } | undefined;
  const lead = (): number => (reasoning ? 1 : 0);
  function* closeReasoning(): Generator<SSEEvent> {
    if (!reasoning?.open) return;
    reasoning.open = false;
    yield event("response.reasoning_summary_text.done", { item_id: reasoning.id, output_index: 0, summary_index: 0, text: reasoning.text });
    yield event("response.output_item.done", { output_index: 0, item: reasoningOutput(reasoning.id, reasoning.text) });
  }
  try {
    for await (const line of lines) {
      throwIfErrorLine(line);
      const r = line as NativeChatResponse;
      if (createdAt === undefined) {
        createdAt = unixSeconds(r.created_at);
        const response = responseObject(ctx, { createdAt, status: "in_progress", output: [], usage: null, streamed: true });
        yield event("response.created", { response });
        yield event("response.in_progress", { response });
      }
      // Thinking comes before an answer's text and calls (the parser gives none after them).
      const thinking = r.message?.thinking ?? "";
      if (thinking && reasoning?.open !== false) {
        if (!reasoning) {
          reasoning = { id: randomId("rs"), text: "", open: true };
          yield event("response.output_item.added", { output_index: 0, item: { id: reasoning.id, type: "reasoning", summary: [] } });
        }
        reasoning.text += thinking;
        yield event("response.reasoning_summary_text.delta", { item_id: reasoning.id, output_index: 0, summary_index: 0, delta: thinking });
      }
      // A chunk's text comes before its calls; text after a call is not sent.
      const piece = calls.length > 0 ? "" : (r.message?.content ?? "");
      if (piece) {
        yield* closeReasoning();
        if (text === undefined) {
          text = "";
          messageIndex = lead() + calls.length;
          yield event("response.output_item.added", { output_index: messageIndex, item: messageItem(ctx.itemId, undefined) });
          yield event("response.content_part.added", { ...at(), part: outputText("") });
        }
        text += piece;
        yield event("response.output_text.delta", { ...at(), delta: piece, logprobs: [] });
      }
      if (r.message?.tool_calls?.length) yield* closeReasoning();
      for (const call of functionCallItems(ctx, r.message?.tool_calls, calls.length)) {
        const output_index = lead() + calls.length + (text === undefined ? 0 : 1);
        calls.push(call);
        yield event("response.output_item.added", { output_index, item: { ...call, status: "in_progress", arguments: "" } });
        yield event("response.function_call_arguments.delta", { item_id: call.id, output_index, delta: call.arguments });
        yield event("response.function_call_arguments.done", { item_id: call.id, output_index, arguments: call.arguments });
        yield event("response.output_item.done", { output_index, item: call });
      }
      if (r.done !== true) continue;
      yield* closeReasoning();
      if (text !== undefined) {
        yield event("response.output_text.done", { ...at(), text, logprobs: [] });
        yield event("response.content_part.done", { ...at(), part: outputText(text) });
        yield event("response.output_item.done", { output_index: messageIndex, item: messageItem(ctx.itemId, text) });
      }
      const end = finished(r);
      const output: OutputItem[] = [...calls];
      if (text !== undefined) output.splice(messageIndex - lead(), 0, messageItem(ctx.itemId, text));
      if (reasoning) output.unshift(reasoningOutput(reasoning.id, reasoning.text));
      const response = responseObject(ctx, { createdAt, status: end.status, incompleteDetails: end.incomplete_details, output, usage: usageOf(r), streamed: true });
      yield event(end.status === "completed" ? "response.completed" : "response.incomplete", { response });
      return;
    }
    throw new Error("the model's response ended before it was done");
  } catch (e) {
    yield event("error", { code: null, message: e instanceof Error ? e.message : String(e), param: null });
  }
}
