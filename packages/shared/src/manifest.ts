// Manifests, their media types and the config blob (docs/protocol.md, "Manifests and media types"). The daemon writes,
// the registry stores and both validate manifests through this module.

import { goJSON } from "./gojson.ts";
import { isDigest } from "./digest.ts";

export const MediaType = {
  manifestV2: "application/vnd.docker.distribution.manifest.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.docker.container.image.v1+json",
  model: "application/vnd.ollama.image.model",
  projector: "application/vnd.ollama.image.projector",
  adapter: "application/vnd.ollama.image.adapter",
  draft: "application/vnd.ollama.image.draft",
  template: "application/vnd.ollama.image.template",
  /** Legacy name of a template layer, read like `template`. */
  prompt: "application/vnd.ollama.image.prompt",
  system: "application/vnd.ollama.image.system",
  params: "application/vnd.ollama.image.params",
  messages: "application/vnd.ollama.image.messages",
  license: "application/vnd.ollama.image.license",
  embed: "application/vnd.ollama.image.embed",
  tensor: "application/vnd.ollama.image.tensor",
  json: "application/vnd.ollama.image.json",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  /** Provenance: the shortest name of the local model the layer was taken from. */
  from?: string;
  /** Tensor or file name, only on safetensors ("MLX") layers. */
  name?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ModelConfig {
  model_format: string;
  model_family: string;
  model_families: string[] | null;
  model_type: string;
  file_type: string;
  renderer?: string;
  parser?: string;
  requires?: string;
  remote_host?: string;
  remote_model?: string;
  capabilities?: string[];
  context_length?: number;
  embedding_length?: number;
  base_name?: string;
  /** What the model's draft layer is, when it has one (docs/protocol.md, "Config blob"). */
  draft?: DraftConfig;
  architecture: string;
  os: string;
  /** Present in configs written before August 2026; tolerated, never written. */
  rootfs?: { type: string; diff_ids: string[] };
}

/** The config blob's `draft` object: the draft model's format and architecture, fields in this order. */
export interface DraftConfig {
  model_format?: string;
  architecture?: string;
  tensor_prefix?: string;
  config?: string;
}

const DRAFT_CONFIG_ORDER: Array<keyof DraftConfig> = ["model_format", "architecture", "tensor_prefix", "config"];

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

/** The largest manifest accepted; real ones are a few kilobytes. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * The deepest nesting of arrays and objects accepted in a manifest or config blob. Real ones are
 * 3 levels deep (the manifest, its layers, a descriptor); the rest is room for annotations.
 */
export const MAX_MANIFEST_DEPTH = 32;
/**
 * The most layers one manifest may name. GGUF models have a handful; safetensors models written
 * one layer per tensor have hundreds to a few thousand. Each layer costs the registry a row and a
 * lookup per push, so the count is bounded like the bytes are.
 */
export const MAX_MANIFEST_LAYERS = 4096;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * How deeply arrays and objects nest in JSON text, found in one pass that skips strings (and the
 * escapes in them) without building anything. It stops at the first level past `limit` and
 * answers limit + 1, so a hostile text costs at most one pass over its bytes. The text need not
 * be valid JSON: JSON.parse, given only texts that pass, still judges the syntax.
 */
export function jsonNestingDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

/** How deep a params or messages layer may nest: real ones are 2 or 3 levels deep. */
export const MAX_LAYER_JSON_DEPTH = 8;

/**
 * JSON.parse, after refusing (ManifestError naming `what`) a text nested deeper than `maxDepth`:
 * manifests and layers come from registries, so the depth scan bounds the work before JSON.parse
 * sees the text.
 */
function parseShallowJSON(text: string, what: string, maxDepth = MAX_MANIFEST_DEPTH): unknown {
  if (jsonNestingDepth(text, maxDepth) > maxDepth) {
    throw new ManifestError(`${what} is nested more than ${maxDepth} levels deep; a model's ${what} needs only a few levels`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The JSON of a params or messages layer, nested no deeper than real ones are. */
export function parseLayerJSON(text: string, what: string): unknown {
  return parseShallowJSON(text, what, MAX_LAYER_JSON_DEPTH);
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  if (typeof d !== "object" || d === null) throw new ManifestError(`${where}: expected an object`);
  const o = d as Record<string, unknown>;
  if (typeof o["mediaType"] !== "string" || o["mediaType"] === "") throw new ManifestError(`${where}.mediaType: expected a non-empty string`);
  if (typeof o["digest"] !== "string" || !isDigest(o["digest"])) {
    throw new ManifestError(`${where}.digest: expected sha256:<64 lower-case hex digits>, got ${JSON.stringify(o["digest"])}`);
  }
  if (typeof o["size"] !== "number" || !Number.isSafeInteger(o["size"]) || o["size"] < 0) {
    throw new ManifestError(`${where}.size: expected a non-negative integer, got ${JSON.stringify(o["size"])}`);
  }
  const out: Descriptor = { mediaType: o["mediaType"], digest: o["digest"], size: o["size"] };
  if (typeof o["from"] === "string" && o["from"] !== "") out.from = o["from"];
  if (typeof o["name"] === "string" && o["name"] !== "") out.name = o["name"];
  return out;
}

/** Parses and validates a manifest; unknown fields are dropped, as Go's decoder does. */
export function parseManifest(bytes: Uint8Array | string): Manifest {
  return readManifest(bytes).manifest;
}

/**
 * parseManifest, also telling whether the manifest names its own media type (`declaredMediaType`,
 * undefined when it does not), which a registry otherwise takes from the request's Content-Type.
 */
export function readManifest(bytes: Uint8Array | string): { manifest: Manifest; declaredMediaType: string | undefined } {
  const size = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.length;
  if (size > MAX_MANIFEST_BYTES) throw new ManifestError(`manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const text = typeof bytes === "string" ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  const raw = parseShallowJSON(text, "manifest");
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ManifestError("manifest: expected a JSON object");
  const o = raw as Record<string, unknown>;
  if (o["schemaVersion"] !== 2) throw new ManifestError(`manifest.schemaVersion: expected 2, got ${JSON.stringify(o["schemaVersion"])}`);
  const declaredMediaType = typeof o["mediaType"] === "string" ? o["mediaType"] : undefined;
  if (!Array.isArray(o["layers"])) throw new ManifestError("manifest.layers: expected an array");
  if (o["layers"].length > MAX_MANIFEST_LAYERS) {
    throw new ManifestError(`manifest.layers: ${o["layers"].length} layers; at most ${MAX_MANIFEST_LAYERS} are accepted`);
  }
  const layers = o["layers"].map((l, i) => checkDescriptor(l, `manifest.layers[${i}]`));
  const config = o["config"] === undefined || o["config"] === null
    ? { mediaType: MediaType.config, digest: "", size: 0 }
    : checkDescriptor(o["config"], "manifest.config");
  return { manifest: { schemaVersion: 2, mediaType: declaredMediaType ?? MediaType.manifestV2, config, layers }, declaredMediaType };
}

function orderedDescriptor(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.from) out.from = d.from;
  if (d.name) out.name = d.name;
  return out;
}

/** The bytes of a manifest as the daemon stores it: Go field order, Go escaping, trailing newline. */
export function encodeManifest(m: Manifest): Buffer {
  const ordered = {
    schemaVersion: m.schemaVersion,
    mediaType: m.mediaType,
    config: orderedDescriptor(m.config),
    layers: m.layers.map(orderedDescriptor),
  };
  return Buffer.from(goJSON(ordered, { newline: true }), "utf8");
}

/** Every blob a manifest references, config included (when present). */
export function manifestDigests(m: Manifest): string[] {
  const out = m.layers.map((l) => l.digest);
  if (m.config.digest) out.push(m.config.digest);
  return out;
}

/** Sum of all layer sizes plus the config, the `size` of /api/tags. */
export function manifestSize(m: Manifest): number {
  return m.layers.reduce((n, l) => n + l.size, 0) + (m.config.digest ? m.config.size : 0);
}

const CONFIG_ORDER: Array<keyof ModelConfig> = [
  "model_format", "model_family", "model_families", "model_type", "file_type",
  "renderer", "parser", "requires", "remote_host", "remote_model", "capabilities",
  "context_length", "embedding_length", "base_name", "draft", "architecture", "os",
];
const CONFIG_ALWAYS = new Set<keyof ModelConfig>(["model_format", "model_family", "model_families", "model_type", "file_type", "architecture", "os"]);

/** The config blob's bytes, byte-identical to Ollama's for the same values (docs/protocol.md, "Config blob"). */
export function encodeConfig(c: ModelConfig): Buffer {
  const ordered: Record<string, unknown> = {};
  for (const key of CONFIG_ORDER) {
    const v = c[key];
    const empty = v === undefined || v === "" || v === 0 || (Array.isArray(v) && v.length === 0);
    if (!CONFIG_ALWAYS.has(key) && empty) continue;
    ordered[key] = v === undefined ? (key === "model_families" ? null : "") : key === "draft" ? orderedDraft(v as DraftConfig) : v;
  }
  return Buffer.from(goJSON(ordered, { newline: true }), "utf8");
}

/** The draft object with Go's field order and its empty fields left out. */
function orderedDraft(d: DraftConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of DRAFT_CONFIG_ORDER) if (d[k]) out[k] = d[k];
  return out;
}

/** Reads a config blob, tolerating the legacy `rootfs` field and missing ones. */
export function parseConfig(bytes: Uint8Array | string): ModelConfig {
  const text = typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8");
  const raw = parseShallowJSON(text, "config blob");
  if (typeof raw !== "object" || raw === null) throw new ManifestError("config blob: expected a JSON object");
  const o = raw as Record<string, unknown>;
  const str = (k: string): string => (typeof o[k] === "string" ? (o[k] as string) : "");
  const cfg: ModelConfig = {
    model_format: str("model_format"),
    model_family: str("model_family"),
    model_families: Array.isArray(o["model_families"]) ? (o["model_families"] as unknown[]).filter((x): x is string => typeof x === "string") : null,
    model_type: str("model_type"),
    file_type: str("file_type"),
    architecture: str("architecture") || "amd64",
    os: str("os") || "linux",
  };
  for (const k of ["renderer", "parser", "requires", "remote_host", "remote_model", "base_name"] as const) {
    if (str(k)) cfg[k] = str(k);
  }
  if (Array.isArray(o["capabilities"])) cfg.capabilities = (o["capabilities"] as unknown[]).filter((x): x is string => typeof x === "string");
  if (typeof o["context_length"] === "number") cfg.context_length = o["context_length"];
  if (typeof o["embedding_length"] === "number") cfg.embedding_length = o["embedding_length"];
  const draft = o["draft"];
  if (typeof draft === "object" && draft !== null && !Array.isArray(draft)) {
    const d = draft as Record<string, unknown>;
    cfg.draft = {};
    for (const k of DRAFT_CONFIG_ORDER) if (typeof d[k] === "string" && d[k] !== "") cfg.draft[k] = d[k];
  }
  return cfg;
}
