// What /api/generate, /api/chat, /api/embed and /api/embeddings accept (docs/daemon.md, "Generate, chat and embed"), as schemas.
// Ollama's clients match on the error texts, so every refusal carries Ollama's message; a field of
// the wrong type that Ollama's routes would merely ignore reads as absent (`.catch`), not as an
// error. Bodies are checked once; each handler raises the faults where Ollama reports them, the
// model being looked up first (see `BodyCheck`).

import { z } from "zod";
import type { Token } from "node-llama-cpp";
import { StatusError } from "../../errors.ts";
import { parseGoDuration } from "../../runner/durations.ts";
import type { ChatMessage, ChatTool, ChatToolCall } from "../../template/index.ts";

/** `keep_alive` (docs/daemon.md, "Generate, chat and embed"): milliseconds; negative means forever; undefined means the default. */
const keepAlive = z
  // Any JSON number: JSON.parse reads 1e999 as Infinity, which z.number() would refuse.
  .union([z.custom<number>((v) => typeof v === "number"), z.string()], { error: 'keep_alive must be a number of seconds or a duration string like "5m"' })
  .nullish()
  .transform((v, ctx): number | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "number") return v < 0 ? -1 : v * 1000;
    try {
      const ms = parseGoDuration(v);
      return ms < 0 ? -1 : ms;
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  });

const THINK_LEVELS = ["high", "medium", "low", "max"];

export interface Think {
  think: boolean;
  level: string;
  /** Whether the request said anything about thinking (templates read it as IsThinkSet). */
  set: boolean;
}

/** `think` is a bool or a level name (docs/daemon.md, "Generate, chat and embed"). */
const think = z
  .union([z.boolean(), z.string()], { error: 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)' })
  .nullish()
  .transform((v, ctx): Think => {
    if (v === undefined || v === null) return { think: false, level: "", set: false };
    if (typeof v === "boolean") return { think: v, level: v ? "medium" : "", set: true };
    if (THINK_LEVELS.includes(v)) return { think: true, level: v, set: true };
    ctx.addIssue({ code: "custom", message: `invalid think value: "${v}" (must be "high", "medium", "low", "max", true, or false)` });
    return z.NEVER;
  });

/** A lenient field: absent when missing, null or of another type. */
const maybe = <T extends z.ZodType>(schema: T) => schema.optional().catch(undefined);
const nonEmpty = <T>(list: T[] | undefined): T[] | undefined => (list && list.length > 0 ? list : undefined);

/**
 * Ollama refuses an out-of-range `top_logprobs` before anything else it reads, the model included
 * (docs/daemon.md, "Log-probabilities"); generate and chat call this first.
 */
export function checkTopLogprobs(body: Record<string, unknown>): void {
  const n = body["top_logprobs"];
  if (typeof n === "number" && !(n >= 0 && n <= 20)) throw new StatusError(400, "top_logprobs must be between 0 and 20");
}

const logprobs = z.boolean().catch(false);
/** Checked in range by checkTopLogprobs; a value of another type reads as 0. */
const topLogprobs = maybe(z.number().int()).transform((n) => n ?? 0);

const stream = maybe(z.boolean()).transform((v) => v !== false);
const truncate = maybe(z.boolean()).transform((v) => v !== false);
const text = z.string().catch("");

/**
 * Everything a generate body holds besides `model` and `options` (the model's lookup reads them).
 * `raw` rules out template, system and context whatever their type, so that check sees the body
 * as sent, before the fields are read.
 */
export const generateBody = z
  .looseObject({})
  .refine((b) => !(b["raw"] === true && (b["template"] || b["system"] || b["context"])), {
    message: "raw mode does not support template, system, or context",
  })
  .pipe(
    z.object({
      keep_alive: keepAlive,
      think,
      stream,
      truncate,
      raw: z.boolean().catch(false),
      prompt: text,
      suffix: text,
      system: text,
      template: text,
      context: maybe(z.array(z.custom<Token>((v) => typeof v === "number"))),
      images: maybe(z.array(z.unknown())),
      format: z.unknown().optional(),
      logprobs,
      top_logprobs: topLogprobs,
    }),
  );
export type GenerateBody = z.output<typeof generateBody>;

const message = z
  .object({
    role: z.string().transform((r) => r.toLowerCase()),
    content: text,
    images: maybe(z.array(z.unknown())).transform(nonEmpty),
    tool_calls: maybe(z.array(z.custom<ChatToolCall>())).transform(nonEmpty),
    tool_name: maybe(z.string()),
    tool_call_id: maybe(z.string()),
    thinking: maybe(z.string()).transform((t) => t || undefined),
  })
  .transform((m): ChatMessage => {
    const out: ChatMessage = { role: m.role, content: m.content };
    if (m.images) out.images = m.images;
    if (m.tool_calls) out.tool_calls = m.tool_calls;
    if (m.tool_name !== undefined) out.tool_name = m.tool_name;
    if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
    if (m.thinking) out.thinking = m.thinking;
    return out;
  });

/** A chat body besides `model` and `options`; the faults in the order they are reported. */
export const chatBody = z.object({
  keep_alive: keepAlive,
  messages: z
    .array(message, { error: "messages must be a list of {role, content}" })
    .nullish()
    .transform((m) => m ?? []),
  think,
  stream,
  truncate,
  tools: maybe(z.array(z.custom<ChatTool>())).transform(nonEmpty),
  format: z.unknown().optional(),
  logprobs,
  top_logprobs: topLogprobs,
});
export type ChatBody = z.output<typeof chatBody>;

export const embedBody = z.object({
  input: z
    .union([z.string(), z.array(z.string())], { error: "invalid input type" })
    .nullish()
    .transform((v): string[] => (v === undefined || v === null || v === "" ? [] : typeof v === "string" ? [v] : v)),
  keep_alive: keepAlive,
  truncate,
  dimensions: maybe(z.number()).transform((d) => (d !== undefined && d > 0 ? Math.floor(d) : undefined)),
});
export type EmbedBody = z.output<typeof embedBody>;

export const embeddingsBody = z.object({
  keep_alive: keepAlive,
  prompt: text,
});
export type EmbeddingsBody = z.output<typeof embeddingsBody>;

/** The message Ollama answers for a refused field; zod's issue path says which field it is. */
function messageOf(issue: z.core.$ZodIssue): string {
  const [field, index] = issue.path;
  // A list element that is not an object has no role either.
  if (field === "messages" && typeof index === "number") return `messages[${index}].role must be a string`;
  return issue.message;
}

/**
 * A body checked against its schema, whose faults the handler raises when it gets to them: Ollama
 * looks the model up before it reads most fields, and clients see which fault comes first.
 */
export class BodyCheck<T> {
  private constructor(private readonly result: z.ZodSafeParseResult<T>) {}

  static of<S extends z.ZodType>(schema: S, body: unknown): BodyCheck<z.output<S>> {
    return new BodyCheck(schema.safeParse(body) as z.ZodSafeParseResult<z.output<S>>);
  }

  /** Raises the first fault in one of these fields, if there is one. */
  faultsIn(...fields: string[]): void {
    const issue = this.result.error?.issues.find((i) => fields.includes(String(i.path[0])));
    if (issue) throw new StatusError(400, messageOf(issue));
  }

  /** The body's values, or its first fault. */
  value(): T {
    if (this.result.success) return this.result.data;
    throw new StatusError(400, messageOf(this.result.error.issues[0]!));
  }
}
