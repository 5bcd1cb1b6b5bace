// Tool calls read from a model's answer as it is generated (docs/daemon.md, "Thinking and tool calls").
// The template says how its model writes a call: the text its tool-call section prints before the
// JSON (`<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>` …, see tool-call-tag.ts), or nothing, in
// which case an answer that opens with a JSON object or list is tried as calls. After the tag comes
// one JSON value: an object `{"name", "arguments" | "parameters"}` (arguments as an object or as a
// JSON string), the same inside `{"function": …}`, or a list of them; Mistral's newer
// `name[ARGS]{…}` form is read too. A call must name one of the request's tools, as Ollama
// requires; a value that is not wholly calls, or is malformed, stays content, tag and all.
// Text that may still become a tag or a call is held back, within MAX_CALL_CHARS and
// MAX_JSON_DEPTH (SECURITY.md, "Tool calls read from model output are bounded"), beyond which it
// is content.

import type { ChatTool, ChatToolCall } from "../template/index.ts";
import { emptyPiece, type ParsedPiece, type PieceParser } from "./answer-parser.ts";
import { partialAtEnd } from "./stop-sequences.ts";

/** The most text one call (tag and JSON) may hold back; a longer one is content. */
export const MAX_CALL_CHARS = 1 << 20;
/** The deepest nesting of a call's JSON, its arguments included; a deeper one is content. */
export const MAX_JSON_DEPTH = 64;

/** The tag a template without one stands for: any answer that opens with JSON is tried as calls. */
export const BARE_JSON = "{";
/** Llama 3.1/3.2 write this before a call in ipython mode; a bare-JSON answer may open with it. */
const PYTHON_TAG = "<|python_tag|>";
/** Between Mistral's tool name and its arguments. */
const ARGS_TAG = "[ARGS]";

export interface ToolCallParserOptions {
  /** What the template prints before a call; BARE_JSON (or "[") when nothing. */
  tag: string;
  /** The request's tools: only these names are calls. */
  tools: readonly ChatTool[];
}

type State =
  /** Looking for the tag (or, bare, for the first text). */
  | "seek"
  /** After a tag: whitespace, then JSON or a Mistral name. */
  | "open"
  /** Inside a call's JSON value. */
  | "json"
  /** After a Mistral tag: the tool name up to `[ARGS]`. */
  | "name"
  /** After a call: separators and a closing tag are dropped. */
  | "after"
  /** Everything that follows is content. */
  | "content";

/** The tool names of a request, from `{function: {name}}`. */
function toolNames(tools: readonly ChatTool[]): Set<string> {
  const names = new Set<string>();
  for (const t of tools) {
    const fn = t["function"];
    if (typeof fn === "object" && fn !== null && typeof (fn as Record<string, unknown>)["name"] === "string") {
      names.add((fn as Record<string, unknown>)["name"] as string);
    }
  }
  return names;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isSpace = (c: string): boolean => c === " " || c === "\n" || c === "\r" || c === "\t";

/** Whether `v` nests no deeper than `max` (arguments given as a JSON string are checked here). */
function depthWithin(v: unknown, max: number): boolean {
  if (typeof v !== "object" || v === null) return true;
  if (max <= 0) return false;
  return Object.values(v).every((x) => depthWithin(x, max - 1));
}

/** Arguments as a call carries them: an object, a JSON string holding one, or absent. */
function argumentsOf(v: unknown): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return {};
  if (isObject(v)) return v;
  if (typeof v !== "string") return undefined;
  try {
    const parsed: unknown = JSON.parse(v);
    return isObject(parsed) && depthWithin(parsed, MAX_JSON_DEPTH) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** One call object, or undefined when it is not a call to one of `names`. */
function callOf(v: unknown, names: ReadonlySet<string>): { name: string; arguments: Record<string, unknown> } | undefined {
  if (!isObject(v)) return undefined;
  if (typeof v["name"] !== "string") return isObject(v["function"]) ? callOf(v["function"], names) : undefined;
  if (!names.has(v["name"])) return undefined;
  const args = argumentsOf(v["arguments"] ?? v["parameters"]);
  return args ? { name: v["name"], arguments: args } : undefined;
}

/** A JSON value as calls: a call, or a non-empty list of nothing but calls. */
function callsOf(v: unknown, names: ReadonlySet<string>): Array<{ name: string; arguments: Record<string, unknown> }> | undefined {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) return undefined;
  const calls = list.map((x) => callOf(x, names));
  return calls.every((c) => c !== undefined) ? calls : undefined;
}

/**
 * Where a JSON value ends, fed its text piece by piece as it arrives (a piece is read once, never
 * the whole text again): strings are skipped, brackets counted. Validity is left to JSON.parse
 * once the value is whole.
 */
class JsonExtent {
  /** The end (exclusive, counted from where the text fed to it sits), or "deep"; undefined while open. */
  result: number | "deep" | undefined;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** `pos`: where the first text fed to it starts. */
  constructor(private pos: number) {}

  feed(piece: string): void {
    for (let i = 0; i < piece.length && this.result === undefined; i++, this.pos++) {
      const c = piece[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === "\\") this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') {
        this.inString = true;
      } else if (c === "{" || c === "[") {
        if (++this.depth > MAX_JSON_DEPTH) this.result = "deep";
      } else if ((c === "}" || c === "]") && --this.depth === 0) {
        this.result = this.pos + 1;
      }
    }
  }
}

class ToolCallParser implements PieceParser {
  private readonly names: Set<string>;
  private readonly bare: boolean;
  /** `</tool_call>` for `<tool_call>`: dropped after a call. */
  private readonly closing: string;
  private readonly longestName: number;
  private readonly tag: string;
  private state: State = "seek";
  /** Text not yet given back. In "json" and "name" it starts at the call's opening text. */
  private held = "";
  /** Where the call's JSON (or Mistral name) starts within `held`. */
  private bodyAt = 0;
  /** The open JSON value's scan, once its start is known. */
  private extent: JsonExtent | undefined;
  /** In "name", once `[ARGS]` is read: the tool's name and where its arguments start. */
  private callName = "";
  private argsAt = 0;
  /** Whether anything but whitespace has been seen (a bare answer is only tried from its start). */
  private started = false;
  private index = 0;

  constructor(opts: ToolCallParserOptions) {
    this.names = toolNames(opts.tools);
    this.longestName = Math.max(0, ...[...this.names].map((n) => n.length));
    let tag = opts.tag.trim();
    // A template that prints `[TOOL_CALLS][` before its list of calls: the `[` opens the JSON.
    if (tag.length > 1 && tag.endsWith("[")) tag = tag.slice(0, -1).trim();
    this.bare = tag === "" || tag === BARE_JSON || tag === "[";
    this.tag = this.bare ? "" : tag;
    this.closing = /^<[A-Za-z_][\w-]*>$/.test(this.tag) ? `</${this.tag.slice(1)}` : "";
  }

  add(text: string): ParsedPiece {
    const out = emptyPiece();
    // An open value reads only the new text: `held` is never rescanned, so a long call costs its length.
    if (this.extent?.result === undefined) this.extent?.feed(text);
    this.held += text;
    this.step(out);
    return out;
  }

  end(): ParsedPiece {
    const out = emptyPiece();
    // What was held back is content: a partial tag, or a call that never closed.
    const rest = this.state === "after" ? this.held.trim() : this.held;
    out.content += rest;
    this.held = "";
    this.state = "content";
    return out;
  }

  /** Runs the state machine over `held` until it needs more text. */
  private step(out: ParsedPiece): void {
    for (;;) {
      const before = this.state;
      const heldBefore = this.held.length;
      switch (this.state) {
        case "content":
          out.content += this.held;
          this.held = "";
          return;
        case "seek":
          if (this.bare) this.seekBare(out);
          else this.seekTag(out);
          break;
        case "open":
          this.open(out);
          break;
        case "json":
          this.json(out);
          break;
        case "name":
          this.name(out);
          break;
        case "after":
          this.after();
          break;
      }
      if (this.state === before && this.held.length === heldBefore) return;
    }
  }

  private seekTag(out: ParsedPiece): void {
    const at = this.held.indexOf(this.tag);
    if (at >= 0) {
      out.content += this.held.slice(0, at);
      this.held = this.held.slice(at);
      this.bodyAt = this.tag.length;
      this.state = "open";
      return;
    }
    const keep = partialAtEnd(this.held, this.tag);
    out.content += this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
  }

  /** A bare answer is calls only when it opens (after whitespace) with JSON or the python tag. */
  private seekBare(out: ParsedPiece): void {
    if (this.started) {
      this.state = "content";
      return;
    }
    const lead = this.held.length - this.held.trimStart().length;
    out.content += this.held.slice(0, lead);
    this.held = this.held.slice(lead);
    if (this.held === "") return;
    this.started = true;
    if (this.held[0] === "{" || this.held[0] === "[") {
      this.bodyAt = 0;
      this.state = "json";
    } else if (this.held.startsWith(PYTHON_TAG)) {
      this.bodyAt = PYTHON_TAG.length;
      this.state = "open";
    } else if (PYTHON_TAG.startsWith(this.held)) {
      this.started = false;
    } else {
      this.state = "content";
    }
  }

  /** After a tag: skips whitespace, then a JSON value or (Mistral) a tool name. */
  private open(out: ParsedPiece): void {
    while (this.bodyAt < this.held.length && isSpace(this.held[this.bodyAt]!)) this.bodyAt++;
    if (this.bodyAt >= this.held.length) return this.checkSize(out);
    const c = this.held[this.bodyAt];
    this.state = c === "{" || c === "[" ? "json" : this.bare ? "content" : "name";
    if (this.state === "content") this.fail(out);
  }

  private json(out: ParsedPiece): void {
    if (!this.extent) {
      this.extent = new JsonExtent(this.bodyAt);
      this.extent.feed(this.held.slice(this.bodyAt));
    }
    const end = this.extent.result;
    if (end === undefined) return this.checkSize(out);
    if (end === "deep" || end > MAX_CALL_CHARS) return this.fail(out);
    let calls: ReturnType<typeof callsOf>;
    try {
      calls = callsOf(JSON.parse(this.held.slice(this.bodyAt, end)), this.names);
    } catch {
      calls = undefined;
    }
    if (!calls) return this.fail(out, end);
    this.emitCalls(out, calls, end);
  }

  /** Mistral's `name[ARGS]{…}`: the name must be a tool's, and `[ARGS]` must come right after it. */
  private name(out: ParsedPiece): void {
    if (!this.extent) {
      // The name is short: until it is known the held text after the tag stays within a tool's name.
      const rest = this.held.slice(this.bodyAt);
      const at = rest.indexOf(ARGS_TAG);
      if (at < 0) {
        if (rest.length > this.longestName + ARGS_TAG.length) this.fail(out);
        return;
      }
      this.callName = rest.slice(0, at).trim();
      if (!this.names.has(this.callName)) return this.fail(out);
      let argsAt = this.bodyAt + at + ARGS_TAG.length;
      while (argsAt < this.held.length && isSpace(this.held[argsAt]!)) argsAt++;
      if (argsAt >= this.held.length) return;
      if (this.held[argsAt] !== "{") return this.fail(out);
      this.argsAt = argsAt;
      this.extent = new JsonExtent(argsAt);
      this.extent.feed(this.held.slice(argsAt));
    }
    const end = this.extent.result;
    if (end === undefined) return this.checkSize(out);
    if (end === "deep" || end > MAX_CALL_CHARS) return this.fail(out);
    let args: Record<string, unknown> | undefined;
    try {
      args = argumentsOf(JSON.parse(this.held.slice(this.argsAt, end)));
    } catch {
      args = undefined;
    }
    if (!args || !depthWithin(args, MAX_JSON_DEPTH)) return this.fail(out, end);
    this.emitCalls(out, [{ name: this.callName, arguments: args }], end);
  }

  /** After a call: drops whitespace, `;` and `,` between calls and the closing tag; then looks for more. */
  private after(): void {
    let i = 0;
    for (;;) {
      while (i < this.held.length && (isSpace(this.held[i]!) || this.held[i] === ";" || this.held[i] === ",")) i++;
      if (this.closing && this.held.startsWith(this.closing, i)) i += this.closing.length;
      else break;
    }
    const rest = this.held.slice(i);
    if (rest === "") {
      this.held = "";
      return;
    }
    this.held = rest;
    // A closing tag or the next call's tag may still be arriving.
    if ([this.closing, this.tag].some((t) => t !== "" && rest.length < t.length && t.startsWith(rest))) return;
    if (!this.bare && rest.startsWith(this.tag)) {
      this.state = "seek";
    } else if (rest[0] === "{" || rest[0] === "[") {
      this.bodyAt = 0;
      this.state = "json";
    } else {
      this.state = this.bare ? "content" : "seek";
    }
  }

  private emitCalls(out: ParsedPiece, calls: Array<{ name: string; arguments: Record<string, unknown> }>, end: number): void {
    for (const c of calls) {
      const call: ChatToolCall = { function: { index: this.index++, name: c.name, arguments: c.arguments } };
      out.toolCalls.push(call);
    }
    this.held = this.held.slice(end);
    this.extent = undefined;
    this.state = "after";
  }

  /**
   * What was taken for a call is not one: the held text up to `end` (all of it when the value is
   * not whole) is content, and the search goes on after it. A bare answer that is not calls is
   * content to its end, as Ollama answers it.
   */
  private fail(out: ParsedPiece, end = this.held.length): void {
    out.content += this.held.slice(0, end);
    this.held = this.held.slice(end);
    this.extent = undefined;
    this.state = this.bare ? "content" : "seek";
  }

  /** A call still open that has grown past MAX_CALL_CHARS is content. */
  private checkSize(out: ParsedPiece): void {
    if (this.held.length > MAX_CALL_CHARS) this.fail(out);
  }
}

/** A parser of the tool calls in an answer's content, for a request with `tools`. */
export function toolCallParser(opts: ToolCallParserOptions): PieceParser {
  return new ToolCallParser(opts);
}
