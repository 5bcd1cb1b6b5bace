// What a `corral run` session knows and how it turns that into requests (docs/daemon.md, "CLI"):
// the model, the conversation, the user's /set choices, and the generate, chat, load and create
// bodies built from them. Answers are streamed through the AnswerPrinter, and Ctrl+C while one is
// streaming stops it instead of ending the program.

import { ModelName } from "@corral/shared/name";
import { parseGoDuration } from "../runner/durations.ts";
import { APIError, type Client } from "./client.ts";
import { CLIError } from "./errors.ts";
import { AnswerPrinter, type AnswerPiece, type TextSink, type ToolCall } from "./render/answer.ts";
import { WaitSpinner } from "./render/spinner.ts";
import { formatTimings, type AnswerMetrics } from "./render/timings.ts";

export type ThinkValue = boolean | "high" | "medium" | "low" | "max";
const THINK_LEVELS: readonly string[] = ["high", "medium", "low", "max"];

export interface Message {
  role: string;
  content: string;
  thinking?: string;
  /** Base64 images the prompt named (cli/image-files.ts). */
  images?: string[];
}

export interface RunOptions {
  model: string;
  /** The model this one was made from (show's details.parent_model); /save builds on it. */
  parentModel: string;
  /** The model's stored MESSAGE history. */
  loadedMessages: Message[];
  /** This session's conversation, sent whole with every chat turn. */
  messages: Message[];
  prompt: string;
  /** The one-shot prompt's images, base64. */
  images: string[];
  /** Whether the model takes images, so prompts are searched for image paths (cli/image-files.ts). */
  multiModal: boolean;
  wordWrap: boolean;
  /** undefined, "json" or a JSON schema. */
  format: unknown;
  /** The session's system message; "" when the model's own applies. */
  system: string;
  /** `/set parameter` values, typed by FormatParams (ints beyond 2^53 are bigints). */
  options: Record<string, unknown>;
  /** The request's keep_alive: a Go duration string, or -1 for forever. */
  keepAlive: string | number | undefined;
  think: ThinkValue | undefined;
  hideThinking: boolean;
  verbose: boolean;
}

export function newRunOptions(model: string): RunOptions {
  return {
    model,
    parentModel: "",
    loadedMessages: [],
    messages: [],
    prompt: "",
    images: [],
    multiModal: false,
    wordWrap: false,
    format: undefined,
    system: "",
    options: {},
    keepAlive: undefined,
    think: undefined,
    hideThinking: false,
    verbose: false,
  };
}

/** `--think[=value]`: a bare flag is true; anything but the known values is an error. */
export function parseThinkFlag(value: string | boolean | undefined): ThinkValue | undefined {
  if (value === undefined) return undefined;
  if (value === true || value === "" || value === "true") return true;
  if (value === false || value === "false") return false;
  if (THINK_LEVELS.includes(value)) return value as ThinkValue;
  throw new CLIError(`invalid value for --think: ${JSON.stringify(value)} (must be true, false, high, medium, low, or max)`);
}

/** `--keepalive` in Go duration syntax; sent as given, or -1 when negative (forever). */
export function parseKeepAliveFlag(value: string | undefined): string | number | undefined {
  if (value === undefined || value === "") return undefined;
  let ms: number;
  try {
    ms = parseGoDuration(value);
  } catch (e) {
    throw new CLIError((e as Error).message);
  }
  return ms < 0 ? -1 : value.trim();
}

/** `--format`: "json", a JSON schema, or nothing. */
export function parseFormatFlag(value: string | undefined): unknown {
  if (value === undefined || value === "") return undefined;
  if (value === "json") return "json";
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw new CLIError(`invalid value for --format: ${JSON.stringify(value)} (use "json" or a JSON schema)`);
  }
}

/** Think is on by default for a model that can think, unless the user chose (docs/daemon.md, "CLI"). */
export function inferThink(capabilities: readonly string[] | undefined, current: ThinkValue | undefined, explicit: boolean): ThinkValue | undefined {
  if (explicit) return current;
  return capabilities?.includes("thinking") ? true : undefined;
}

/** Request JSON cannot hold a bigint; such an int goes as the nearest number. */
function jsonOptions(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) out[k] = typeof v === "bigint" ? Number(v) : v;
  return out;
}

function common(o: RunOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (o.format !== undefined) body["format"] = o.format;
  body["options"] = jsonOptions(o.options);
  if (o.keepAlive !== undefined) body["keep_alive"] = o.keepAlive;
  if (o.think !== undefined) body["think"] = o.think;
  return body;
}

export function generateBody(o: RunOptions): Record<string, unknown> {
  return { model: o.model, prompt: o.prompt, ...(o.system ? { system: o.system } : {}), ...(o.images.length > 0 ? { images: o.images } : {}), ...common(o) };
}

export function chatBody(o: RunOptions): Record<string, unknown> {
  return { model: o.model, messages: o.messages, ...common(o) };
}

/** A generate request without a prompt: loads the model (or unloads it with keep_alive 0). */
export function loadBody(o: Pick<RunOptions, "model" | "keepAlive" | "think">): Record<string, unknown> {
  return { model: o.model, ...(o.keepAlive !== undefined ? { keep_alive: o.keepAlive } : {}), ...(o.think !== undefined ? { think: o.think } : {}) };
}

/** `/save <name>`: a new model from the parent (or this one) with the session's choices. */
export function createBody(name: string, o: RunOptions): Record<string, unknown> {
  const parent = o.parentModel && ModelName.parse(o.parentModel).isValid() ? o.parentModel : "";
  const body: Record<string, unknown> = { model: name, from: parent || o.model };
  if (o.system) body["system"] = o.system;
  if (Object.keys(o.options).length > 0) body["parameters"] = jsonOptions(o.options);
  const messages = [...o.loadedMessages, ...o.messages];
  if (messages.length > 0) body["messages"] = messages;
  return body;
}

/** Sets the system message: it replaces a system message at the end of the history, or is appended. */
export function setSystem(o: RunOptions, text: string): void {
  o.system = text;
  const message = { role: "system", content: text };
  const last = o.messages[o.messages.length - 1];
  if (last?.role === "system") o.messages[o.messages.length - 1] = message;
  else o.messages.push(message);
}

/** Loads the model, or unloads it with keep_alive 0, with a spinner while the daemon works. */
export async function loadOrUnload(client: Client, body: Record<string, unknown>, err: TextSink = process.stderr): Promise<void> {
  const spinner = new WaitSpinner(err);
  spinner.start();
  try {
    for await (const _ of client.stream("/api/generate", body)) {
      // Only the end of the stream matters.
    }
  } finally {
    spinner.stop();
  }
}

interface GenerateChunk extends AnswerMetrics {
  response?: string;
  thinking?: string;
  tool_calls?: ToolCall[];
  done?: boolean;
}

interface ChatChunk extends AnswerMetrics {
  message?: { role?: string; content?: string; thinking?: string; tool_calls?: ToolCall[] };
  done?: boolean;
}

export interface Answer {
  role: string;
  content: string;
  thinking: string;
  /** The final chunk, when the stream got that far. */
  final: (AnswerMetrics & { done?: boolean }) | undefined;
  /** Stopped with Ctrl+C. */
  canceled: boolean;
}

export interface AnswerIO {
  out: TextSink;
  err: TextSink;
}

function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === "AbortError" || (e.cause instanceof Error && e.cause.name === "AbortError"));
}

/**
 * Streams one answer from /api/generate or /api/chat to the screen. Ctrl+C (SIGINT) while it
 * streams aborts the request and the answer comes back marked canceled.
 */
export async function streamAnswer(client: Client, kind: "generate" | "chat", o: RunOptions, io: AnswerIO): Promise<Answer> {
  const printer = new AnswerPrinter({ out: io.out, err: io.err, wordWrap: o.wordWrap, hideThinking: o.hideThinking });
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.on("SIGINT", onSignal);
  const answer: Answer = { role: "assistant", content: "", thinking: "", final: undefined, canceled: false };
  printer.waiting();
  try {
    if (kind === "generate") {
      for await (const c of client.stream<GenerateChunk>("/api/generate", generateBody(o), abort.signal)) {
        printer.piece({ content: c.response ?? "", ...(c.thinking ? { thinking: c.thinking } : {}), ...(c.tool_calls ? { tool_calls: c.tool_calls } : {}) });
        if (c.done) answer.final = c;
      }
    } else {
      for await (const c of client.stream<ChatChunk>("/api/chat", chatBody(o), abort.signal)) {
        const m = c.message ?? {};
        if (m.role) answer.role = m.role;
        const piece: AnswerPiece = { content: m.content ?? "" };
        if (m.thinking) piece.thinking = m.thinking;
        if (m.tool_calls) piece.tool_calls = m.tool_calls;
        printer.piece(piece);
        if (c.done) answer.final = c;
      }
    }
  } catch (e) {
    if (!abort.signal.aborted || !isAbort(e)) throw e;
    answer.canceled = true;
  } finally {
    process.off("SIGINT", onSignal);
    printer.finish();
  }
  answer.content = printer.content;
  answer.thinking = printer.thinking;
  return answer;
}

/** The timing lines for --verbose / `/set verbose`, on stderr. */
export function printTimings(err: TextSink, final: AnswerMetrics | undefined): void {
  if (final) err.write(formatTimings(final));
}

/** The errors the interactive session reports and survives (docs/daemon.md, "CLI"). */
export function isThinkError(e: unknown): boolean {
  return e instanceof APIError && (e.message.includes("does not support thinking") || e.message.includes("invalid think value"));
}
