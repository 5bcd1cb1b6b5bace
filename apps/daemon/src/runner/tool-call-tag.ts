// How a model writes its tool calls (docs/daemon.md, "Thinking and tool calls"): the text its
// template prints before a call's JSON, which tool-call-parser.ts looks for in the answer.
// A Go template says it in its `{{ if .ToolCalls }}` block, read from the parse tree as Ollama
// reads it: the first non-blank text in that block, cut at the first `{`. A Jinja template is
// rendered with and without an assistant call and the text between their common start and the
// call's name is taken, cut the same way. No tag means that an answer opening with JSON is tried
// as calls. A PARSER in the model's config names the format outright where Corral knows it.

import type { BranchNode, ChatTool, ListNode, Node } from "../template/index.ts";
import { RenderBudget } from "../template/index.ts";
import type { PieceParser } from "./answer-parser.ts";
import { renderJinja } from "./jinja-render.ts";
import { compileTemplate, type PromptTemplate } from "./prompt.ts";
import { BARE_JSON, toolCallParser } from "./tool-call-parser.ts";

/**
 * The tool-call side of Ollama's built-in parsers (PARSER in a Modelfile) whose format Corral
 * reads: Qwen 3 writes `<tool_call>{…}</tool_call>`, Ministral `[TOOL_CALLS]name[ARGS]{…}`.
 * Other names, Ollama's included, leave the tag to the template, as an unknown name does in Ollama.
 */
const PARSER_TAGS: Readonly<Record<string, string>> = {
  "qwen3": "<tool_call>",
  "qwen3-thinking": "<tool_call>",
  "qwen3-vl-instruct": "<tool_call>",
  "qwen3-vl-thinking": "<tool_call>",
  "ministral": "[TOOL_CALLS]",
};

/** The tag of the built-in parser `name`, or undefined when Corral has none of that name. */
export function parserTag(name: string | undefined): string | undefined {
  return name && Object.hasOwn(PARSER_TAGS, name) ? PARSER_TAGS[name] : undefined;
}

/** A template's tool-call text as a tag: CRLF as LF, cut before the JSON, trimmed. */
function tagOf(text: string): string {
  const tag = text.replaceAll("\r\n", "\n").split("{", 1)[0]!.trim();
  return tag === "" ? BARE_JSON : tag;
}

/** Whether a branch's condition reads a `.ToolCalls` field. */
function readsToolCalls(n: Node): boolean {
  if (n.type !== "if") return false;
  return n.pipe.cmds.some((cmd) => cmd.args.some((a) => a.type === "field" && a.ident.includes("ToolCalls")));
}

/** The first `{{ if … .ToolCalls … }}` block, searched through nested blocks. */
function toolCallsBlock(nodes: readonly Node[]): BranchNode | undefined {
  for (const n of nodes) {
    if (n.type === "if" && readsToolCalls(n)) return n;
    const lists: Array<ListNode | null> = n.type === "list" ? [n] : n.type === "if" || n.type === "range" || n.type === "with" ? [n.list, n.elseList] : [];
    for (const l of lists) {
      const found = l ? toolCallsBlock(l.nodes) : undefined;
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * The first non-blank text of a block, depth first; the search ends at the first action, and
 * within a nested block, so that text printed after the call's fields is never taken.
 */
function firstText(nodes: readonly Node[]): string | undefined {
  for (const n of nodes) {
    switch (n.type) {
      case "text":
        if (n.text.trim() !== "") return n.text;
        break;
      case "list": {
        const t = firstText(n.nodes);
        if (t !== undefined) return t;
        break;
      }
      case "if":
      case "range":
      case "with":
        return firstText(n.list.nodes) ?? (n.elseList ? firstText(n.elseList.nodes) : undefined);
      case "action":
        return undefined;
      default:
        break;
    }
  }
  return undefined;
}

const PROBE_NAME = "corral_tool_probe";
/** Assistant text no template starts a tool call with. */
const PROBE_TEXT = "@@corral-probe@@";

/** What a Jinja template prints before a call, found by rendering a call and a plain answer. */
function jinjaTag(t: Extract<PromptTemplate, { kind: "jinja" }>): string {
  const tool = { type: "function", function: { name: PROBE_NAME, description: "", parameters: { type: "object", properties: {} } } };
  // Mistral's templates want nine-character call ids.
  const call = { id: "a1b2c3d4e", type: "function", function: { name: PROBE_NAME, arguments: {} } };
  const renderWith = (assistant: Record<string, unknown>): string =>
    renderJinja(t.template, { messages: [{ role: "user", content: "hi" }, assistant], tools: [tool], add_generation_prompt: false, bos_token: "", eos_token: "" }, new RenderBudget());
  try {
    const plain = renderWith({ role: "assistant", content: PROBE_TEXT });
    const called = renderWith({ role: "assistant", content: "", tool_calls: [call] });
    // The tools are listed before the conversation, so the call is the name's last mention.
    const at = called.lastIndexOf(PROBE_NAME);
    if (at < 0) return BARE_JSON;
    let common = 0;
    while (common < at && plain[common] === called[common]) common++;
    // Two special tokens may share their start (`<|START_RESPONSE|>`, `<|START_ACTION|>`): the
    // tag begins at the token the common part ends inside.
    const head = called.slice(0, common);
    for (const [open, close] of [["<", ">"], ["[", "]"]] as const) {
      if (head.lastIndexOf(open) > head.lastIndexOf(close)) common = Math.min(common, head.lastIndexOf(open));
    }
    return tagOf(called.slice(common, at));
  } catch {
    // A template that cannot render a call has no tag to find.
    return BARE_JSON;
  }
}

const tags = new WeakMap<PromptTemplate, string>();

/** The tag a template prints before its tool calls, or BARE_JSON when it prints none. */
export function templateToolCallTag(t: PromptTemplate): string {
  let tag = tags.get(t);
  if (tag === undefined) {
    if (t.kind === "jinja") tag = jinjaTag(t);
    else {
      const block = toolCallsBlock(t.template.root.nodes);
      const text = block ? firstText(block.list.nodes) : undefined;
      tag = text === undefined ? BARE_JSON : tagOf(text);
    }
    tags.set(t, tag);
  }
  return tag;
}

/**
 * The tool-call stage of a chat answer, or undefined when the request has no tools: the tag comes
 * from the model's PARSER when Corral knows that name, else from the template it is rendered with.
 */
export function toolCallsParser(model: { template: string | undefined; parser: string | undefined }, tools: readonly ChatTool[] | undefined): PieceParser | undefined {
  if (!tools || tools.length === 0) return undefined;
  const tag = parserTag(model.parser) ?? templateToolCallTag(compileTemplate(model.template ?? "{{ .Prompt }}"));
  return toolCallParser({ tag, tools });
}
