// What the API says about a stored model: the `details` of /api/tags and everything /api/show
// returns, read from the config blob, the text layers and the GGUF header of the model layer.

import { MediaType, parseConfig, parseLayerJSON, type ModelConfig } from "@corral/shared/manifest";
import { readGGUFHeader, architecture, kvToJSON, ggufNumber, type GGUFHeader } from "@corral/shared/gguf/index";
import { headerTraits, modelCapabilities, templateTraits } from "@corral/shared/capabilities";
import { fileTypeName, ggmlTypeName } from "@corral/shared/gguf/types";
import { thinkingTags } from "../runner/thinking-parser.ts";
import type { Store } from "./store.ts";
import type { StoredManifest } from "./manifests.ts";

export interface ModelDetails {
  parent_model: string;
  format: string;
  family: string;
  families: string[] | null;
  parameter_size: string;
  quantization_level: string;
  context_length?: number;
  embedding_length?: number;
}

export interface ModelContents {
  config: ModelConfig;
  modelLayer?: { digest: string; path: string; from?: string };
  header?: GGUFHeader;
  projectors: Array<{ digest: string; path: string }>;
  adapters: Array<{ digest: string; path: string }>;
  /** A draft model for speculative decoding (stored and shown; this runtime does not use it). */
  draft?: { digest: string; path: string };
  template?: string;
  system?: string;
  parameters: Record<string, unknown>;
  licenses: string[];
  messages: Array<{ role: string; content: string }>;
}

/** Reads every part of a model that the API reports. */
export async function readModel(store: Store, m: StoredManifest): Promise<ModelContents> {
  const config = m.manifest.config.digest
    ? parseConfig(await store.readBlobText(m.manifest.config.digest))
    : { model_format: "", model_family: "", model_families: null, model_type: "", file_type: "", architecture: "amd64", os: "linux" };
  const out: ModelContents = { config, projectors: [], adapters: [], parameters: {}, licenses: [], messages: [] };
  for (const l of m.manifest.layers) {
    const path = store.blobs.path(l.digest);
    switch (l.mediaType) {
      case MediaType.model:
        if (!out.modelLayer) out.modelLayer = l.from ? { digest: l.digest, path, from: l.from } : { digest: l.digest, path };
        break;
      case MediaType.projector:
        out.projectors.push({ digest: l.digest, path });
        break;
      case MediaType.adapter:
        out.adapters.push({ digest: l.digest, path });
        break;
      case MediaType.draft:
        out.draft ??= { digest: l.digest, path };
        break;
      case MediaType.template:
      case MediaType.prompt:
        out.template = await store.readBlobText(l.digest);
        break;
      case MediaType.system:
        out.system = await store.readBlobText(l.digest);
        break;
      case MediaType.params:
        out.parameters = parseLayerJSON(await store.readBlobText(l.digest), "parameters layer") as Record<string, unknown>;
        break;
      case MediaType.license:
        out.licenses.push(await store.readBlobText(l.digest));
        break;
      case MediaType.messages:
        out.messages = parseLayerJSON(await store.readBlobText(l.digest), "messages layer") as Array<{ role: string; content: string }>;
        break;
      default:
        // Unknown media types are ignored, as Ollama's reader does.
        break;
    }
  }
  if (out.modelLayer) out.header = await readGGUFHeader(out.modelLayer.path).catch(() => undefined);
  return out;
}

export function modelDetails(c: ModelContents): ModelDetails {
  const d: ModelDetails = {
    parent_model: c.modelLayer?.from ?? "",
    format: c.config.model_format,
    family: c.config.model_family,
    families: c.config.model_families,
    parameter_size: c.config.model_type,
    quantization_level: c.config.file_type,
  };
  const h = c.header;
  if (h) {
    const arch = architecture(h);
    if ((!d.quantization_level || d.quantization_level === "unknown")) {
      const ft = fileTypeName(ggufNumber(h, "general.file_type"));
      if (ft !== "unknown") d.quantization_level = ft;
    }
    const ctx = c.config.context_length ?? ggufNumber(h, `${arch}.context_length`);
    const emb = c.config.embedding_length ?? ggufNumber(h, `${arch}.embedding_length`);
    if (ctx) d.context_length = ctx;
    if (emb) d.embedding_length = emb;
  }
  return d;
}

const daemonThinks = (t: string): boolean => thinkingTags(t) !== undefined;

/** What a model can do (docs/daemon.md, "Capabilities"; the rule is shared with the registry's catalog). */
export function capabilities(c: ModelContents): string[] {
  return modelCapabilities({
    declared: c.config.capabilities,
    hasModelLayer: c.modelLayer !== undefined,
    header: c.header ? headerTraits(c.header, daemonThinks) : undefined,
    projectors: c.projectors.length,
    template: c.template !== undefined ? templateTraits(c.template, daemonThinks) : undefined,
  });
}

export function tensorList(h: GGUFHeader): Array<{ name: string; type: string; shape: number[] }> {
  return h.tensors.map((t) => ({ name: t.name, type: ggmlTypeName(t.type), shape: t.dims }));
}

export function modelInfo(h: GGUFHeader | undefined, verbose: boolean): Record<string, unknown> {
  return h ? kvToJSON(h, { verbose }) : {};
}
