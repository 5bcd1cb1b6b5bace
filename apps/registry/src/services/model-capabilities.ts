// The catalog's capability badges (completion, embedding, vision, audio, tools, insert, thinking):
// the rule shared with the daemon (packages/shared/src/capabilities.ts) applied to what the catalog
// keeps about a tag's blobs: the model layer's GGUF header traits, the template layer's text and the
// manifest's projector layers. Go templates are only read, not parsed: `.Thinking` marks thinking.

import { mentionsThinking, modelCapabilities, templateTraits } from "@corral/shared/capabilities";
import { MediaType, type Manifest } from "@corral/shared/manifest";
import type { GGUFFacts } from "./model-facts.ts";

/** The badges shown, in this order. */
export const SHOWN_CAPABILITIES = ["completion", "embedding", "vision", "audio", "tools", "insert", "thinking"] as const;

/** The layer prompts are rendered with (the last TEMPLATE, as the daemon reads it). */
export function templateLayer(manifest: Manifest): Manifest["layers"][number] | undefined {
  return manifest.layers.filter((l) => l.mediaType === MediaType.template || l.mediaType === MediaType.prompt).at(-1);
}

/**
 * What a tag's model can do. `model`: the model layer's facts (null or undefined when unknown);
 * `template`: the template layer's text (undefined when there is none or it is unknown).
 */
export function tagCapabilities(manifest: Manifest, known: { model: GGUFFacts | null | undefined; template: string | undefined }): string[] {
  const caps = modelCapabilities({
    hasModelLayer: manifest.layers.some((l) => l.mediaType === MediaType.model),
    header: known.model?.traits,
    projectors: manifest.layers.filter((l) => l.mediaType === MediaType.projector).length,
    template: known.template !== undefined ? templateTraits(known.template, mentionsThinking) : undefined,
  });
  return SHOWN_CAPABILITIES.filter((c) => caps.includes(c));
}
