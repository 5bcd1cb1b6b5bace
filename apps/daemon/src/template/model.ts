/**
 * The model-TEMPLATE layer on top of the engine (docs/daemon.md, "Templates and prompts"): the
 * identifiers a template uses, the implicit `{{ .Response }}`, the legacy
 * last-turn cut, and rendering a chat through a template in suffix,
 * messages or legacy mode.
 */
import type { ActionNode, AnyNode, ListNode, Node, PipeNode } from "./ast.ts";
import { copyNode } from "./ast.ts";
import { TemplateError } from "./errors.ts";
import { goJSON } from "./json.ts";
import { RenderBudget } from "./limits.ts";
import { parseTemplate, type Template } from "./template.ts";
import { isPlainObject } from "./values.ts";

/** Field and variable names used by a node, as written (`$`, `$m`, `Role`, …). */
function identifiers(n: AnyNode | null, out: string[]): void {
  if (n === null) return;
  switch (n.type) {
    case "list":
      for (const c of n.nodes) identifiers(c, out);
      return;
    case "template":
      if (n.pipe === null) throw new TemplateError("undefined template specified");
      identifiers(n.pipe, out);
      return;
    case "action":
      identifiers(n.pipe, out);
      return;
    case "if":
    case "range":
    case "with":
      identifiers(n.pipe, out);
      identifiers(n.list, out);
      identifiers(n.elseList, out);
      return;
    case "pipe":
      for (const c of n.cmds) for (const a of c.args) identifiers(a, out);
      return;
    case "field":
    case "variable":
      out.push(...n.ident);
      return;
  }
}

/**
 * Every field and variable name used anywhere in the template and its
 * definitions, lower-cased, de-duplicated and sorted: how a model's template is
 * asked whether it reads `.Messages`, `.Tools`, `.Response`…
 * Throws TemplateError("undefined template specified") for `{{template "x"}}` without a pipeline.
 */
export function templateVars(t: Template): string[] {
  const names: string[] = [];
  for (const tree of [t.root, ...t.defined.values()]) identifiers(tree, names);
  return [...new Set(names.map((s) => s.toLowerCase()))].sort();
}

const responseAction = (): ActionNode => ({
  type: "action",
  pos: 0,
  line: 1,
  pipe: { type: "pipe", pos: 0, line: 1, isAssign: false, decl: [], cmds: [{ type: "command", pos: 0, args: [{ type: "field", pos: 0, ident: ["Response"] }] }] },
});

/**
 * Parses a model TEMPLATE: a syntax error or an identifier error throws
 * TemplateError; a template that mentions neither `.Messages` nor `.Response`
 * gets `{{ .Response }}` appended to its tree (its `source` stays the original text).
 */
export function parseModelTemplate(text: string): Template {
  const t = parseTemplate(text);
  const vars = templateVars(t);
  if (vars.includes("messages") || vars.includes("response")) return t;
  return t.withRoot({ ...t.root, nodes: [...t.root.nodes, responseAction()] });
}

/**
 * The template for the last turn of a legacy (prompt/response) conversation:
 * a copy of the tree that keeps the first `.Response` field and drops every node
 * after it in tree order, so rendering stops right after the response slot.
 */
export function truncateAfterResponse(t: Template): Template {
  let cut = false;
  const drop = (n: AnyNode): boolean => {
    if (n.type === "field" && n.ident.includes("Response")) {
      cut = true;
      return false;
    }
    return cut;
  };
  const walkList = (l: ListNode): ListNode | null => {
    if (drop(l)) return null;
    l.nodes = l.nodes.map(walkNode).filter((x): x is Node => x !== null);
    return l;
  };
  const walkPipe = (p: PipeNode): PipeNode | null => {
    if (drop(p)) return null;
    const cmds = [];
    for (const c of p.cmds) {
      const args = c.args.filter((a) => (a.type === "pipe" ? walkPipe(a) !== null : !drop(a)));
      if (args.length === 0) return null;
      c.args = args;
      cmds.push(c);
    }
    if (cmds.length === 0) return null;
    p.cmds = cmds;
    return p;
  };
  const walkNode = (n: Node): Node | null => {
    if (drop(n)) return null;
    switch (n.type) {
      case "list":
        return walkList(n);
      case "if":
      case "range":
      case "with": {
        // Conditions are not searched: only the bodies can hold the cut point.
        n.list = walkList(n.list) ?? { type: "list", pos: n.list.pos, nodes: [] };
        n.elseList = n.elseList ? walkList(n.elseList) : null;
        return n;
      }
      case "action": {
        const p = walkPipe(n.pipe);
        if (p === null) return null;
        n.pipe = p;
        return n;
      }
    }
    return n;
  };
  const root = walkList(copyNode(t.root)) ?? { type: "list", pos: 0, nodes: [] };
  return t.withRoot(root);
}

// ---------------------------------------------------------------------------
// Rendering a conversation (docs/daemon.md, "Templates and prompts")

export interface ChatToolCall {
  id?: string;
  function: { index?: number; name: string; arguments?: Record<string, unknown> | null };
}

export interface ChatMessage {
  role: string;
  content: string;
  thinking?: string;
  images?: unknown[];
  tool_calls?: ChatToolCall[];
  tool_name?: string;
  tool_call_id?: string;
}

/** A tool as sent in a chat request (JSON-schema parameters). */
export type ChatTool = Record<string, unknown>;

export interface TemplateValues {
  messages: ChatMessage[];
  tools?: ChatTool[];
  prompt?: string;
  suffix?: string;
  think?: boolean;
  thinkLevel?: string;
  isThinkSet?: boolean;
}

/** Gives a value Go's Stringer behaviour without adding a visible field. */
function printsAs<T extends object>(v: T, text: () => string): T {
  Object.defineProperty(v, "String", { value: text, enumerable: false });
  return v;
}

function jsonOf<T extends object>(v: T, json: () => unknown): T {
  Object.defineProperty(v, "toJSON", { value: json, enumerable: false });
  return v;
}

/** JSON objects become Go maps (sorted keys), recursively, as Go decodes them into map[string]any. */
function toGoMap(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toGoMap);
  if (isPlainObject(v)) return new Map(Object.entries(v).map(([k, x]) => [k, toGoMap(x)]));
  return v;
}

const omitEmpty = (entries: [string, unknown, boolean?][]): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const [k, v, always] of entries) {
    const empty = v === undefined || v === null || v === "" || (Array.isArray(v) && v.length === 0) || (v instanceof Map && v.size === 0);
    if (always || !empty) out[k] = v;
  }
  return out;
};

function asObject(v: unknown): Record<string, unknown> {
  return isPlainObject(v) ? v : {};
}

function templateProperty(raw: unknown): Record<string, unknown> {
  const p = asObject(raw);
  const types = Array.isArray(p.type) ? (p.type as string[]) : typeof p.type === "string" ? [p.type] : [];
  const type = printsAs([...types], () => (types.length === 1 ? types[0]! : types.length === 0 ? "" : `[${types.join(" ")}]`));
  const anyOf = Array.isArray(p.anyOf) ? p.anyOf.map(templateProperty) : [];
  const properties = templateProperties(p.properties);
  const prop = {
    AnyOf: anyOf,
    Type: type,
    Items: p.items,
    Description: typeof p.description === "string" ? p.description : "",
    Enum: Array.isArray(p.enum) ? p.enum : [],
    Properties: properties,
    Required: Array.isArray(p.required) ? p.required : [],
  };
  return jsonOf(prop, () =>
    omitEmpty([
      ["anyOf", anyOf],
      ["type", types.length === 1 ? types[0] : types],
      ["items", p.items],
      ["description", prop.Description],
      ["enum", prop.Enum],
      ["properties", p.properties === undefined || p.properties === null ? undefined : properties],
      ["required", prop.Required],
    ]),
  );
}

function templateProperties(raw: unknown): Map<string, unknown> {
  const m = new Map(Object.entries(asObject(raw)).map(([k, v]) => [k, templateProperty(v)]));
  return printsAs(m, () => goJSON(m));
}

function templateTool(raw: ChatTool): Record<string, unknown> {
  const fn = asObject(raw.function);
  const params = asObject(fn.parameters);
  const properties = templateProperties(params.properties);
  const parameters = {
    Type: typeof params.type === "string" ? params.type : "",
    Defs: params.$defs,
    Items: params.items,
    Required: Array.isArray(params.required) ? params.required : [],
    Properties: properties,
  };
  const func = {
    Name: typeof fn.name === "string" ? fn.name : "",
    Description: typeof fn.description === "string" ? fn.description : "",
    Parameters: parameters,
  };
  const tool = { Type: typeof raw.type === "string" ? raw.type : "", Items: raw.items, Function: func };
  const json = (): unknown => ({
    ...omitEmpty([["type", tool.Type, true], ["items", tool.Items]]),
    function: {
      name: func.Name,
      description: func.Description,
      parameters: omitEmpty([
        ["type", parameters.Type, true],
        ["$defs", parameters.Defs],
        ["items", parameters.Items],
        ["required", parameters.Required],
        ["properties", params.properties === undefined || params.properties === null ? null : properties, true],
      ]),
    },
  });
  return printsAs(jsonOf(tool, json), () => goJSON(tool));
}

function templateMessage(m: ChatMessage): Record<string, unknown> {
  const toolCalls = (m.tool_calls ?? []).map((tc) => {
    const args = toGoMap(tc.function.arguments ?? {}) as Map<string, unknown>;
    return {
      ID: tc.id ?? "",
      Function: { Index: tc.function.index ?? 0, Name: tc.function.name, Arguments: printsAs(args, () => goJSON(args)) },
    };
  });
  return {
    Role: m.role,
    Content: m.content,
    Thinking: m.thinking ?? "",
    Images: m.images ?? [],
    ToolCalls: toolCalls,
    ToolName: m.tool_name ?? "",
    ToolCallID: m.tool_call_id ?? "",
  };
}

/** Merges consecutive messages of one role (tool messages excepted) and collects all system messages. */
function collate(msgs: readonly ChatMessage[]): { system: string; messages: ChatMessage[] } {
  const system: string[] = [];
  const out: ChatMessage[] = [];
  for (const m of msgs) {
    if (m.role === "system") system.push(m.content);
    const prev = out[out.length - 1];
    if (prev && prev.role === m.role && m.role !== "tool") prev.content += "\n\n" + m.content;
    else out.push({ ...m });
  }
  return { system: system.join("\n\n"), messages: out };
}

/**
 * Renders a conversation through a model template (docs/daemon.md, "Templates and prompts"): suffix mode when
 * both prompt and suffix are set, messages mode when the template reads
 * `.Messages`, otherwise the legacy prompt/response loop whose last turn stops
 * after `{{ .Response }}`. The legacy loop executes the template once per turn, so every execution
 * draws on the one `budget` of the render.
 */
export function renderModelTemplate(t: Template, v: TemplateValues, budget: RenderBudget = new RenderBudget()): string {
  const opts = { budget };
  const vars = templateVars(t);
  const think = { Think: v.think ?? false, ThinkLevel: v.thinkLevel ?? "", IsThinkSet: v.isThinkSet ?? false };
  const { system, messages } = collate(v.messages);
  if (v.prompt && v.suffix) return t.execute({ Prompt: v.prompt, Suffix: v.suffix, Response: "", ...think }, opts);
  if (vars.includes("messages")) {
    const tools = v.tools === undefined ? undefined : v.tools.map(templateTool);
    return t.execute({
      System: system,
      Messages: messages.map(templateMessage),
      Tools: tools ? printsAs(tools, () => goJSON(tools)) : printsAs([], () => "null"),
      Response: "",
      ...think,
    }, opts);
  }
  let out = "";
  let sys = "";
  let prompt = "";
  let response = "";
  const emit = (): void => {
    out += t.execute({ System: sys, Prompt: prompt, Response: response, ...think }, opts);
    sys = prompt = response = "";
  };
  for (const m of messages) {
    if (m.role === "system") {
      if (prompt !== "" || response !== "") emit();
      sys = m.content;
    } else if (m.role === "user") {
      if (response !== "") emit();
      prompt = m.content;
    } else if (m.role === "assistant") {
      response = m.content;
    }
  }
  return out + truncateAfterResponse(t).execute({ System: sys, Prompt: prompt, Response: response, ...think }, opts);
}
