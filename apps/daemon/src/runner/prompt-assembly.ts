// The conversation a model sees for a generate or chat request (docs/daemon.md, "Templates and prompts"): where the system
// prompt goes, when the model's MESSAGE history is replayed, what `context` replaces, which earlier
// answers lose their thinking, and which template renders it, truncated to the context window.
// Pure: tokens are counted by the caller.

import type { ChatMessage, ChatTool } from "../template/index.ts";
import { compileTemplate, render, renderTruncated, type RenderInput } from "./prompt.ts";
import { withoutThinking } from "./thinking-parser.ts";

/** What of a model shapes its prompts. */
export interface PromptModel {
  /** TEMPLATE text; undefined means `{{ .Prompt }}`. */
  template: string | undefined;
  /** The model's SYSTEM; "" when it has none. */
  system: string;
  /** The model's MESSAGE history. */
  messages: ReadonlyArray<{ role: string; content: string }>;
  numCtx: number;
  /** The vocabulary's BOS and EOS texts, for Jinja templates. */
  bosToken?: string;
  eosToken?: string;
  /** Earlier answers lose their `<think>` blocks before rendering (Qwen3 and DeepSeek-R1 models, as in Ollama). */
  stripsPastThinking?: boolean;
}

export interface ThinkSetting {
  think: boolean;
  level: string;
  set: boolean;
}

export interface GeneratePrompt {
  prompt: string;
  suffix: string;
  /** The request's system prompt; "" leaves the model's. */
  system: string;
  /** The request's template; "" leaves the model's. A template of the request's own is never truncated. */
  template: string;
  /** Whether the request carries a previous answer's `context`, which stands for the history. */
  continues: boolean;
  think: ThinkSetting;
  truncate: boolean;
}

export interface ChatPrompt {
  messages: ChatMessage[];
  tools?: ChatTool[];
  think: ThinkSetting;
  truncate: boolean;
}

const DEFAULT_TEMPLATE = "{{ .Prompt }}";

function special(model: PromptModel): Pick<RenderInput, "bosToken" | "eosToken"> {
  return { ...(model.bosToken ? { bosToken: model.bosToken } : {}), ...(model.eosToken ? { eosToken: model.eosToken } : {}) };
}

const thinkValues = (t: ThinkSetting): Pick<RenderInput, "think" | "thinkLevel" | "isThinkSet"> => ({ think: t.think, thinkLevel: t.level, isThinkSet: t.set });

/**
 * The prompt text for /api/generate: the system prompt (the request's, else the model's), the
 * model's MESSAGE history unless `context` continues an earlier answer, then the prompt.
 */
export function assembleGenerate(model: PromptModel, req: GeneratePrompt, countTokens: (text: string) => number): string {
  const messages: ChatMessage[] = [];
  const system = req.system || model.system;
  if (system) messages.push({ role: "system", content: system });
  if (!req.continues) messages.push(...model.messages.map((m) => ({ role: m.role, content: m.content })));
  messages.push({ role: "user", content: req.prompt });
  const input: RenderInput = { messages, prompt: req.prompt, suffix: req.suffix, ...thinkValues(req.think), ...special(model) };
  if (req.template) return render(compileTemplate(req.template), input);
  return renderTruncated(compileTemplate(model.template ?? DEFAULT_TEMPLATE), input, { numCtx: model.numCtx, countTokens, truncate: req.truncate });
}

/** Takes the thinking out of the answers before the last user message (docs/daemon.md, "Thinking and tool calls"). */
function stripPastThinking(messages: ChatMessage[]): void {
  const lastUser = messages.findLastIndex((m) => m.role === "user");
  for (let i = 0; i < lastUser; i++) {
    const m = messages[i]!;
    if (m.role === "assistant") messages[i] = { ...m, content: withoutThinking(m.content) };
  }
}

/**
 * The prompt text for /api/chat: the model's MESSAGE history, then the request's messages; the
 * model's SYSTEM goes first unless the request opens with a system message of its own.
 */
export function assembleChat(model: PromptModel, req: ChatPrompt, countTokens: (text: string) => number): string {
  const messages: ChatMessage[] = model.messages.map((m) => ({ role: m.role, content: m.content }));
  messages.push(...req.messages);
  if (req.messages[0]?.role !== "system" && model.system) messages.unshift({ role: "system", content: model.system });
  if (model.stripsPastThinking) stripPastThinking(messages);
  const input: RenderInput = { messages, ...(req.tools ? { tools: req.tools } : {}), ...thinkValues(req.think), ...special(model) };
  return renderTruncated(compileTemplate(model.template ?? DEFAULT_TEMPLATE), input, { numCtx: model.numCtx, countTokens, truncate: req.truncate });
}
