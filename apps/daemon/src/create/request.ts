// The body of POST /api/create and its validation before anything is streamed (docs/daemon.md, "Create").

import { ModelName } from "@corral/shared/name";
import { parseDigest } from "@corral/shared/digest";
import { badRequest } from "../errors.ts";

export interface CreateMessage {
  role: string;
  content: string;
}

export interface CreateRequest {
  model: string;
  from?: string;
  files?: Record<string, string>;
  adapters?: Record<string, string>;
  /** A draft model's files (GGUF), for speculative decoding. */
  draft_files?: Record<string, string>;
  template?: string;
  system?: string;
  license?: string | string[];
  parameters?: Record<string, unknown>;
  messages?: CreateMessage[];
  quantize?: string;
  /** Names of Ollama's built-in prompt renderer and output parser, kept in the config blob. */
  renderer?: string;
  parser?: string;
  /** The lowest Ollama version the model needs (semver, kept in the config blob). */
  requires?: string;
  stream?: boolean;
}

/** Go's fs.ValidPath: relative, slash-separated, no empty, "." or ".." segments. */
function validRelativePath(p: string): boolean {
  if (p === "" || p.startsWith("/") || p.endsWith("/") || p.includes("\\") || p.includes("\0")) return false;
  return p.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
}

function digestMap(v: unknown, field: string, checkPaths: boolean): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw badRequest(`${field} must be an object of file name to digest`);
  const out: Record<string, string> = {};
  for (const [k, d] of Object.entries(v as Record<string, unknown>)) {
    if (checkPaths && !validRelativePath(k)) throw badRequest("file path must be relative");
    if (typeof d !== "string" || d === "") throw badRequest("invalid digest format");
    try {
      out[k] = parseDigest(d);
    } catch {
      throw badRequest("invalid digest format");
    }
  }
  return out;
}

/** Checks the request's shape and returns it normalised; throws a 400 StatusError otherwise. */
export function parseCreateRequest(body: unknown): { req: CreateRequest; name: ModelName } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("missing request body");
  const b = body as Record<string, unknown>;
  const model = typeof b["model"] === "string" && b["model"] !== "" ? b["model"] : typeof b["name"] === "string" ? b["name"] : "";
  const name = ModelName.parse(model);
  if (!name.isValid()) throw badRequest("invalid model name");
  const str = (k: string): string | undefined => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw badRequest(`${k} must be a string`);
    return v;
  };
  const req: CreateRequest = { model };
  const from = str("from");
  if (from) req.from = from;
  const files = digestMap(b["files"], "files", true);
  if (files) req.files = files;
  const adapters = digestMap(b["adapters"], "adapters", true);
  if (adapters) req.adapters = adapters;
  const draft = digestMap(b["draft_files"], "draft_files", true);
  if (draft && Object.keys(draft).length > 0) req.draft_files = draft;
  for (const k of ["template", "system", "renderer", "parser", "requires"] as const) {
    const v = str(k);
    if (v !== undefined) req[k] = v;
  }
  const quantize = str("quantize") ?? str("quantization");
  if (quantize) req.quantize = quantize;
  const license = b["license"];
  if (typeof license === "string") req.license = license;
  else if (Array.isArray(license)) {
    if (!license.every((l) => typeof l === "string")) throw badRequest("license must be a string or a list of strings");
    req.license = license as string[];
  } else if (license !== undefined && license !== null) throw badRequest("license must be a string or a list of strings");
  const params = b["parameters"];
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) throw badRequest("parameters must be an object");
    req.parameters = params as Record<string, unknown>;
  }
  const messages = b["messages"];
  if (messages !== undefined && messages !== null) {
    if (!Array.isArray(messages)) throw badRequest("messages must be a list of {role, content}");
    req.messages = messages.map((m, i) => {
      const o = (m ?? {}) as Record<string, unknown>;
      if (typeof o["role"] !== "string" || typeof o["content"] !== "string") {
        throw badRequest(`messages[${i}] must have a string role and content`);
      }
      return { role: o["role"].toLowerCase(), content: o["content"] };
    });
  }
  if (typeof b["stream"] === "boolean") req.stream = b["stream"];
  return { req, name };
}
