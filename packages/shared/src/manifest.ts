// Manifests, their media types and the config blob (ollama-protocol.md §2). The daemon writes,
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
  architecture: string;
  os: string;
  /** Present in configs written before August 2026; tolerated, never written. */
  rootfs?: { type: string; diff_ids: string[] };
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

/** The largest manifest accepted; real ones are a few kilobytes. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

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
  const text = typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8");
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) throw new ManifestError(`manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`manifest is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ManifestError("manifest: expected a JSON object");
  const o = raw as Record<string, unknown>;
  if (o["schemaVersion"] !== 2) throw new ManifestError(`manifest.schemaVersion: expected 2, got ${JSON.stringify(o["schemaVersion"])}`);
  const mediaType = typeof o["mediaType"] === "string" ? o["mediaType"] : MediaType.manifestV2;
  if (!Array.isArray(o["layers"])) throw new ManifestError("manifest.layers: expected an array");
  const layers = o["layers"].map((l, i) => checkDescriptor(l, `manifest.layers[${i}]`));
  const config = o["config"] === undefined || o["config"] === null
    ? { mediaType: MediaType.config, digest: "", size: 0 }
    : checkDescriptor(o["config"], "manifest.config");
  return { schemaVersion: 2, mediaType, config, layers };
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
  "context_length", "embedding_length", "base_name", "architecture", "os",
];
const CONFIG_ALWAYS = new Set<keyof ModelConfig>(["model_format", "model_family", "model_families", "model_type", "file_type", "architecture", "os"]);

/** The config blob's bytes, byte-identical to Ollama's for the same values (§2.4). */
export function encodeConfig(c: ModelConfig): Buffer {
  const ordered: Record<string, unknown> = {};
  for (const key of CONFIG_ORDER) {
    const v = c[key];
    const empty = v === undefined || v === "" || v === 0 || (Array.isArray(v) && v.length === 0);
    if (!CONFIG_ALWAYS.has(key) && empty) continue;
    ordered[key] = v === undefined ? (key === "model_families" ? null : "") : v;
  }
  return Buffer.from(goJSON(ordered, { newline: true }), "utf8");
}

/** Reads a config blob, tolerating the legacy `rootfs` field and missing ones. */
export function parseConfig(bytes: Uint8Array | string): ModelConfig {
  const text = typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`config blob is not valid JSON: ${(e as Error).message}`);
  }
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
  return cfg;
}
