// Turning a conversation into the prompt text a model sees (§8.4, §8.5): the model's TEMPLATE
// (Go text/template, or a Hugging Face Jinja chat template), its SYSTEM and MESSAGE history,
// and truncation to the context window keeping the system messages and the last message.

import { Template as JinjaTemplate } from "@huggingface/jinja";
import { parseModelTemplate, renderModelTemplate, TemplateError, type Template, type TemplateValues } from "../template/index.ts";
import { StatusError } from "../errors.ts";

export type PromptTemplate = { kind: "go"; template: Template } | { kind: "jinja"; template: JinjaTemplate; source: string };

/** Jinja chat templates always use `{%` statements or `messages`; Go templates never use `{%`. */
export function isJinja(text: string): boolean {
  return /\{%-?\s/.test(text) || /\{\{-?\s*(messages|message\[|bos_token)/.test(text);
}

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

export function render(t: PromptTemplate, input: RenderInput): string {
  try {
    if (t.kind === "go") return renderModelTemplate(t.template, input);
    return t.template.render({
      messages: input.messages.map((m) => ({ role: m.role, content: m.content, ...(m.tool_calls ? { tool_calls: m.tool_calls } : {}) })),
      ...(input.tools ? { tools: input.tools } : {}),
      add_generation_prompt: true,
      bos_token: input.bosToken ?? "",
      eos_token: input.eosToken ?? "",
    });
  } catch (e) {
    throw new StatusError(500, `template error: ${(e as Error).message}`);
  }
}

/**
 * §8.5 step 3: drops the oldest non-system messages until the rendered prompt fits in
 * `numCtx` tokens. System messages and the last message are always kept.
 */
export function renderTruncated(t: PromptTemplate, input: RenderInput, numCtx: number, countTokens: (text: string) => number, truncate = true): string {
  const msgs = input.messages;
  if (!truncate || msgs.length <= 1) return render(t, input);
  for (let i = 0; i < msgs.length; i++) {
    const kept = [...msgs.slice(0, i).filter((m) => m.role === "system"), ...msgs.slice(i)];
    const text = render(t, { ...input, messages: kept });
    if (i === msgs.length - 1 || countTokens(text) <= numCtx) return text;
  }
  return render(t, input);
}
