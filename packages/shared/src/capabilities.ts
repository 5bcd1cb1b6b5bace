// What a model can do, derived from its files (docs/daemon.md, "Capabilities"): the one rule behind
// the daemon's `capabilities` (/api/show, request checks) and the registry catalog's badges. Callers
// reduce what they hold (a GGUF header, template text, the manifest's layers) to the traits below;
// the rule itself only combines them, in the order Ollama lists capabilities.

import { architecture, ggufString, type GGUFHeader } from "./gguf/reader.ts";

/** Jinja chat templates always use `{%` statements or `messages`; Go templates never use `{%`. */
export function isJinja(text: string): boolean {
  return /\{%-?\s/.test(text) || /\{\{-?\s*(messages|message\[|bos_token)/.test(text);
}

/**
 * Whether a Jinja chat template thinks with `<think>`/`</think>`, as Ollama recognises it in a GGUF's
 * chat template: it names both tags, or it only strips past reasoning by splitting at `</think>`
 * (and has no `reasoning_content` field of its own).
 */
export function jinjaThinks(source: string): boolean {
  if (source.includes("<think>") && source.includes("</think>")) return true;
  const splitsPastReasoning = source.includes("content.split('</think>')") || source.includes('content.split("</think>")');
  return splitsPastReasoning && !source.includes("reasoning_content") && !source.includes("<SPECIAL_12>");
}

/** Whether a template has thinking tags; the daemon parses Go templates, `mentionsThinking` only reads them. */
export type ThinkingCheck = (template: string) => boolean;

/**
 * The thinking check of a reader without a template engine (the registry's catalog): a Jinja
 * template by `jinjaThinks`, a Go template when it reads `.Thinking`.
 */
export const mentionsThinking: ThinkingCheck = (t) => (isJinja(t) ? jinjaThinks(t) : /\.Thinking\b/.test(t));

/** What one template says about its model. */
export interface TemplateTraits {
  /** Reads `.Tools` (any template). */
  readsTools: boolean;
  /** A Jinja template reading `tools` inside one of its tags, not merely in its text. */
  jinjaReadsTools: boolean;
  /** Reads `.Suffix`: fill-in-the-middle. */
  readsSuffix: boolean;
  thinks: boolean;
}

export function templateTraits(text: string, thinks: ThinkingCheck): TemplateTraits {
  let jinjaReadsTools = false;
  if (isJinja(text)) {
    for (const m of text.matchAll(/\{[{%]([\s\S]*?)[}%]\}/g)) {
      if (/\btools\b/.test(m[1]!.replace(/(["'])(?:\\.|(?!\1)[^\\])*\1/g, ""))) {
        jinjaReadsTools = true;
        break;
      }
    }
  }
  return { readsTools: /\.\s*tools\b/i.test(text), jinjaReadsTools, readsSuffix: /\.Suffix\b/.test(text), thinks: text !== "" && thinks(text) };
}

/** What the model layer's GGUF header says. */
export interface HeaderTraits {
  /** `<arch>.pooling_type` is set: an embedding model. */
  pooling: boolean;
  vision: boolean;
  audio: boolean;
  /** The traits of `tokenizer.chat_template`, if the file has one. */
  chatTemplate: TemplateTraits | null;
}

export function headerTraits(h: GGUFHeader, thinks: ThinkingCheck): HeaderTraits {
  const arch = architecture(h);
  const chat = ggufString(h, "tokenizer.chat_template");
  return {
    pooling: h.kv.has(`${arch}.pooling_type`),
    vision: h.kv.has(`${arch}.vision.block_count`),
    audio: h.kv.has(`${arch}.audio.block_count`),
    chatTemplate: chat !== undefined ? templateTraits(chat, thinks) : null,
  };
}

export interface CapabilityInputs {
  /** Capabilities the config blob lists. */
  declared?: readonly string[] | undefined;
  hasModelLayer: boolean;
  /** Undefined when the header is unknown (unreadable, or not read yet). */
  header?: HeaderTraits | undefined;
  projectors: number;
  /** The TEMPLATE layer's traits; undefined without one. */
  template?: TemplateTraits | undefined;
}

/** The capabilities, each once: completion or embedding, vision, audio, tools, insert, thinking, and what the config declares. */
export function modelCapabilities(m: CapabilityInputs): string[] {
  const caps = new Set<string>(m.declared ?? []);
  if (m.header) {
    caps.add(m.header.pooling ? "embedding" : "completion");
    if (m.header.vision) caps.add("vision");
    if (m.header.audio) caps.add("audio");
  } else if (m.hasModelLayer) {
    caps.add("completion");
  }
  if (m.projectors > 0) caps.add("vision");
  if (m.template?.readsTools) caps.add("tools");
  if (m.template?.readsSuffix) caps.add("insert");
  // Prompts are rendered with the TEMPLATE, else the GGUF's own chat template: thinking tags and a
  // Jinja template's tools are read from that one.
  const rendered = m.template ?? m.header?.chatTemplate ?? undefined;
  if (rendered?.thinks) caps.add("thinking");
  if (rendered?.jinjaReadsTools) caps.add("tools");
  return [...caps];
}
