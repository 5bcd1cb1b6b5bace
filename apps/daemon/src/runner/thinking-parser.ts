// The thinking stage of an answer (docs/daemon.md, "Thinking and tool calls"): which tags enclose a
// model's reasoning, read from its template, and the streaming parser that sends the text between
// them to `thinking` and the rest to `content`, as Ollama's generic thinking parser does.
//
// Tags: in a Go template, the text that opens and closes the innermost list around a `.Thinking`
// field inside a `range` over `.Messages` (for `<think>{{ .Thinking }}</think>`, the two tags); a
// Jinja chat template thinks with `<think>`/`</think>` when it names both tags, or when it only
// strips past reasoning by splitting at `</think>` (and has no `reasoning_content` field of its own).
//
// The parser: whitespace before the opening tag is dropped with it, and so is whitespace after
// either tag; text before any opening tag means the model did not think, and every piece is content
// as written. A prompt that already ends with the opening tag starts the answer inside the thinking.
// A piece that may still turn out to be a tag is held back until the next one decides it. Work per
// piece is linear in the piece: the closing tag is found with a prefix table, never by rescanning.

import type { AnyNode, ListNode, Node } from "../template/index.ts";
import { emptyPiece, type ParsedPiece, type PieceParser } from "./answer-parser.ts";
import { jinjaThinks } from "@corral/shared/capabilities";
import { compileTemplate, isJinja, type PromptTemplate } from "./prompt.ts";

export interface ThinkingTags {
  opening: string;
  closing: string;
}

const THINK_TAGS: ThinkingTags = { opening: "<think>", closing: "</think>" };

/** Go's unicode.IsSpace: the ASCII spaces, NEL, NBSP and Unicode's other White_Space characters. */
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const isSpace = (ch: string): boolean => SPACE.test(ch);

function trimStartSpace(s: string): string {
  let i = 0;
  while (i < s.length && isSpace(s[i]!)) i++;
  return s.slice(i);
}

function trimSpace(s: string): string {
  let end = s.length;
  while (end > 0 && isSpace(s[end - 1]!)) end--;
  return trimStartSpace(s.slice(0, end));
}

// ---- tags from a template ----

/** Calls `visit` on every node reachable the way Ollama walks a template tree (pipelines too), with its ancestors. */
function walk(n: AnyNode | null, ancestors: AnyNode[], visit: (n: AnyNode, ancestors: readonly AnyNode[]) => void): void {
  if (n === null) return;
  visit(n, ancestors);
  ancestors.push(n);
  switch (n.type) {
    case "list":
      for (const c of n.nodes) walk(c, ancestors, visit);
      break;
    case "if":
    case "range":
    case "with":
      walk(n.pipe, ancestors, visit);
      walk(n.list, ancestors, visit);
      walk(n.elseList, ancestors, visit);
      break;
    case "action":
      walk(n.pipe, ancestors, visit);
      break;
    case "template":
      walk(n.pipe, ancestors, visit);
      break;
    case "pipe":
      for (const c of n.cmds) walk(c, ancestors, visit);
      break;
    case "command":
      for (const a of n.args) walk(a, ancestors, visit);
      break;
    default:
      break;
  }
  ancestors.pop();
}

/** Whether a `range` iterates over something that reads the `.Messages` field. */
function rangesOverMessages(pipe: AnyNode): boolean {
  let found = false;
  walk(pipe, [], (n) => {
    if (n.type === "field" && n.ident[0] === "Messages") found = true;
  });
  return found;
}

const textOf = (n: Node | undefined): string | undefined => (n?.type === "text" ? trimSpace(n.text) : undefined);

/**
 * The tags around `.Thinking` in a Go template's main tree: for each `.Thinking` field whose nearest
 * enclosing `range` goes over `.Messages`, the first and last text of its nearest enclosing list
 * (trimmed) become the opening and closing tag; a later such field overrides an earlier one.
 */
function goTemplateTags(root: ListNode): ThinkingTags | undefined {
  let opening = "";
  let closing = "";
  walk(root, [], (n, ancestors) => {
    if (n.type !== "field" || n.ident[0] !== "Thinking") return;
    const range = ancestors.findLast((a) => a.type === "range");
    if (range?.type !== "range" || !rangesOverMessages(range.pipe)) return;
    const list = ancestors.findLast((a) => a.type === "list");
    if (list?.type !== "list") return;
    opening = textOf(list.nodes[0]) ?? opening;
    closing = textOf(list.nodes[list.nodes.length - 1]) ?? closing;
  });
  return opening !== "" && closing !== "" ? { opening, closing } : undefined;
}

/** Jinja chat templates: the `<think>` family, as Ollama recognises it in a GGUF's chat template. */
function jinjaTemplateTags(source: string): ThinkingTags | undefined {
  return jinjaThinks(source) ? THINK_TAGS : undefined;
}

const tagCache = new WeakMap<PromptTemplate, ThinkingTags | null>();

/**
 * The thinking tags of a model's template, or undefined when it has none (then the model cannot
 * think: docs/daemon.md, "Capabilities"). A Jinja template is only searched, as Ollama searches a
 * GGUF's chat template; a Go template is parsed (once: the parse is cached), and one that does not
 * parse has none.
 */
export function thinkingTags(template: string | undefined): ThinkingTags | undefined {
  if (template === undefined || template === "") return undefined;
  if (isJinja(template)) return jinjaTemplateTags(template);
  let compiled: PromptTemplate;
  try {
    compiled = compileTemplate(template);
  } catch {
    return undefined;
  }
  if (compiled.kind !== "go") return undefined;
  let tags = tagCache.get(compiled);
  if (tags === undefined) {
    tags = goTemplateTags(compiled.template.root) ?? null;
    tagCache.set(compiled, tags);
  }
  return tags ?? undefined;
}

// ---- the streaming parser ----

/** Knuth–Morris–Pratt's prefix table: for each length, the longest proper border of the tag's prefix. */
function prefixTable(tag: string): number[] {
  const table = new Array<number>(tag.length + 1).fill(0);
  let k = 0;
  for (let i = 1; i < tag.length; i++) {
    while (k > 0 && tag[i] !== tag[k]) k = table[k]!;
    if (tag[i] === tag[k]) k++;
    table[i + 1] = k;
  }
  return table;
}

type State =
  /** Nothing but whitespace and maybe the start of the opening tag yet. */
  | "before"
  /** After the opening tag, dropping whitespace. */
  | "opened"
  | "thinking"
  /** After the closing tag, dropping whitespace. */
  | "closed"
  /** Everything from here on is content. */
  | "content";

class ThinkingParser implements PieceParser {
  private state: State;
  /** In "before": the whitespace seen, then what may be the opening tag. */
  private space = "";
  private candidate = "";
  /** In "thinking": how much of the closing tag the text ends with (held back). */
  private matched = 0;
  private readonly table: number[];

  constructor(
    private readonly tags: ThinkingTags,
    startInside: boolean,
  ) {
    this.state = startInside ? "opened" : "before";
    this.table = prefixTable(tags.closing);
  }

  add(text: string): ParsedPiece {
    const out = emptyPiece();
    let rest = text;
    while (rest !== "") rest = this.step(rest, out);
    return out;
  }

  end(): ParsedPiece {
    const out = emptyPiece();
    if (this.state === "before") out.content = this.space + this.candidate;
    if (this.state === "thinking") out.thinking = this.tags.closing.slice(0, this.matched);
    this.state = "content";
    this.space = this.candidate = "";
    this.matched = 0;
    return out;
  }

  /** Consumes what the current state can of `text`, adds what is decided to `out`, returns the rest. */
  private step(text: string, out: ParsedPiece): string {
    switch (this.state) {
      case "before":
        return this.before(text, out);
      case "opened":
      case "closed":
        return this.dropSpace(text);
      case "thinking":
        return this.thinking(text, out);
      case "content":
        out.content += text;
        return "";
    }
  }

  private before(text: string, out: ParsedPiece): string {
    let t = text;
    if (this.candidate === "") {
      const kept = trimStartSpace(t);
      this.space += t.slice(0, t.length - kept.length);
      t = kept;
    }
    this.candidate += t;
    const { opening } = this.tags;
    if (this.candidate.startsWith(opening)) {
      const after = this.candidate.slice(opening.length);
      this.space = this.candidate = "";
      this.state = "opened";
      return after;
    }
    if (opening.startsWith(this.candidate)) return "";
    // Text before any opening tag: the model did not think, and its whitespace is its own.
    out.content += this.space + this.candidate;
    this.space = this.candidate = "";
    this.state = "content";
    return "";
  }

  private dropSpace(text: string): string {
    const kept = trimStartSpace(text);
    if (kept !== "") this.state = this.state === "opened" ? "thinking" : "content";
    return kept;
  }

  private thinking(text: string, out: ParsedPiece): string {
    const { closing } = this.tags;
    const held = closing.slice(0, this.matched);
    let k = this.matched;
    for (let i = 0; i < text.length; i++) {
      while (k > 0 && text[i] !== closing[k]) k = this.table[k]!;
      if (text[i] === closing[k]) k++;
      if (k === closing.length) {
        // The closing tag ends at text[i]: everything before it was thinking.
        out.thinking += (held + text.slice(0, i + 1)).slice(0, -closing.length);
        this.matched = 0;
        this.state = "closed";
        return text.slice(i + 1);
      }
    }
    out.thinking += (held + text).slice(0, held.length + text.length - k);
    this.matched = k;
    return "";
  }
}

/** Whether `text` ends with `tag`, trailing whitespace aside (only the end of a long prompt is read). */
function endsWithTag(text: string, tag: string): boolean {
  let end = text.length;
  while (end > 0 && isSpace(text[end - 1]!)) end--;
  return end >= tag.length && text.startsWith(tag, end - tag.length);
}

/**
 * The thinking stage for a request, or undefined when there is none: the request must think and the
 * model's template must have thinking tags. `promptText` is the prompt the model continues; when it
 * ends with the opening tag (whitespace aside), the answer starts inside the thinking.
 */
export function thinkingParser(template: string | undefined, opts: { think: boolean; promptText: string }): PieceParser | undefined {
  if (!opts.think) return undefined;
  const tags = thinkingTags(template);
  if (!tags) return undefined;
  return new ThinkingParser(tags, endsWithTag(opts.promptText, tags.opening));
}

/**
 * What Ollama keeps of an earlier answer of a Qwen3 or DeepSeek-R1 model before the prompt is
 * rendered: the content after its `<think>` block. Only what the parser gives out while the text
 * streams counts, as in Ollama, so an answer that never closes its thinking keeps nothing.
 */
export function withoutThinking(text: string): string {
  return new ThinkingParser(THINK_TAGS, false).add(text).content;
}

/** The parser for known tags (tests and callers that already have them). */
export function parserForTags(tags: ThinkingTags, startInside = false): PieceParser {
  return new ThinkingParser(tags, startInside);
}
