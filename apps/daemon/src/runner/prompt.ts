// Turning a conversation into the prompt text a model sees (docs/daemon.md, "Templates and prompts"): the model's TEMPLATE
// (Go text/template, or a Hugging Face Jinja chat template), its SYSTEM and MESSAGE history,
// and truncation to the context window keeping the system messages and the last message.
// A TEMPLATE is whatever the model's creator wrote and runs on the daemon's main thread, so every
// render runs within the limits of template/limits.ts.

import { Template as JinjaTemplate } from "@huggingface/jinja";
import { limitsFor, parseModelTemplate, RenderBudget, renderModelTemplate, TemplateError, type InputSize, type RenderLimits, type Template, type TemplateValues } from "../template/index.ts";
import { StatusError } from "../errors.ts";
import { renderJinja } from "./jinja-render.ts";
import { isJinja } from "@corral/shared/capabilities";

export type PromptTemplate = { kind: "go"; template: Template } | { kind: "jinja"; template: JinjaTemplate; source: string };

// Which kind a template is: the rule is shared with the registry's catalog.
export { isJinja };

const cache = new Map<string, PromptTemplate>();

export function compileTemplate(text: string): PromptTemplate {
  let t = cache.get(text);
  if (t) return t;
  try {
    t = isJinja(text) ? { kind: "jinja", template: new JinjaTemplate(text), source: text } : { kind: "go", template: parseModelTemplate(text) };
  } catch (e) {
    if (e instanceof TemplateError) throw new StatusError(500, `template error: ${e.message}`);
    throw new StatusError(500, `template error: ${(e as Error).message}`);
  }
  if (cache.size > 64) cache.clear();
  cache.set(text, t);
  return t;
}

export interface RenderInput extends TemplateValues {
  /** For Jinja templates. */
  bosToken?: string;
  eosToken?: string;
}

/** What a render's input holds, which its limits grow with (limitsFor). */
export function inputSize(input: RenderInput): InputSize {
  let chars = (input.prompt?.length ?? 0) + (input.suffix?.length ?? 0);
  for (const m of input.messages) {
    chars += m.role.length + m.content.length + (m.thinking?.length ?? 0) + (m.tool_name?.length ?? 0);
    if (m.tool_calls) chars += JSON.stringify(m.tool_calls).length;
  }
  if (input.tools) chars += JSON.stringify(input.tools).length;
  return { chars, items: input.messages.length + (input.tools?.length ?? 0) };
}

/**
 * A message as Hugging Face chat templates read one: an assistant's calls as
 * `{id, type: "function", function}`, and a tool result with the `tool_call_id` and `name` of
 * the call it answers (docs/daemon.md, "Thinking and tool calls").
 */
function jinjaMessage(m: RenderInput["messages"][number]): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.tool_calls) out["tool_calls"] = m.tool_calls.map((tc) => ({ ...(tc.id ? { id: tc.id } : {}), type: "function", function: { name: tc.function.name, arguments: tc.function.arguments ?? {} } }));
  if (m.tool_call_id) out["tool_call_id"] = m.tool_call_id;
  if (m.tool_name) out["name"] = m.tool_name;
  return out;
}

/** Renders within `budget`; throws the engine's own errors (TemplateLimitError when a limit is reached). */
export function renderWithin(t: PromptTemplate, input: RenderInput, budget: RenderBudget): string {
  if (t.kind === "go") return renderModelTemplate(t.template, input, budget);
  return renderJinja(
    t.template,
    {
      messages: input.messages.map(jinjaMessage),
      ...(input.tools ? { tools: input.tools } : {}),
      add_generation_prompt: true,
      // A request that says whether to think tells the template too (Qwen3's reads it), as Ollama does.
      ...(input.isThinkSet ? { enable_thinking: input.think ?? false } : {}),
      bos_token: input.bosToken ?? "",
      eos_token: input.eosToken ?? "",
    },
    budget,
  );
}

export interface RenderOptions {
  /** The limits (default: limitsFor the input). */
  limits?: RenderLimits;
  /** When the work these renders belong to began; the wall-clock limit counts from it. */
  started?: number;
}

/** Renders the prompt; any template error, a reached limit included, is a 500 `template error: …`. */
export function render(t: PromptTemplate, input: RenderInput, opts: RenderOptions = {}): string {
  try {
    const budget = new RenderBudget(opts.limits ?? limitsFor(inputSize(input)), opts.started === undefined ? {} : { started: opts.started });
    return renderWithin(t, input, budget);
  } catch (e) {
    throw new StatusError(500, `template error: ${(e as Error).message}`);
  }
}

export interface TruncateOptions {
  /** The context window, in tokens, the prompt must fit in. */
  numCtx: number;
  countTokens: (text: string) => number;
  /** False renders the whole conversation whatever its length (default true). */
  truncate?: boolean | undefined;
}

/**
 * Drops the oldest non-system messages until the rendered prompt fits in
 * `numCtx` tokens. System messages and the last message are always kept. Each render has the
 * limits of the whole conversation, and all of them share one wall clock: a long conversation
 * that must lose many messages is rendered many times over.
 */
export function renderTruncated(t: PromptTemplate, input: RenderInput, opts: TruncateOptions): string {
  const { numCtx, countTokens, truncate = true } = opts;
  const renderOpts: RenderOptions = { limits: limitsFor(inputSize(input)), started: performance.now() };
  const msgs = input.messages;
  if (!truncate || msgs.length <= 1) return render(t, input, renderOpts);
  for (let i = 0; i < msgs.length; i++) {
    const kept = [...msgs.slice(0, i).filter((m) => m.role === "system"), ...msgs.slice(i)];
    const text = render(t, { ...input, messages: kept }, renderOpts);
    if (i === msgs.length - 1 || countTokens(text) <= numCtx) return text;
  }
  return render(t, input, renderOpts);
}
