// Turns a Modelfile into a create request on the client side (§3.7): paths are expanded against
// the Modelfile's folder, files are checked and hashed locally so that a bad file is reported with
// its own path before anything is uploaded.

import { readdir, readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { parseModelfile, ModelfileError, type ModelfileCommand } from "@corral/shared/modelfile/parser";
import { DEPRECATED_PARAMETERS, formatParams } from "@corral/shared/modelfile/params";
import { GGUFError, readGGUFHeader, validateGGUFLayout } from "@corral/shared/gguf/index";

export class ModelfileInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelfileInputError";
  }
}

export interface LocalCreateRequest {
  from?: string;
  /** Absolute local path → transport name is decided at upload time. */
  files: string[];
  adapters: string[];
  template?: string;
  system?: string;
  license?: string[];
  parameters?: Record<string, unknown>;
  messages?: Array<{ role: string; content: string }>;
  warnings: string[];
}

/** `~`, `~/x`, absolute, or relative to the Modelfile's folder. */
export function expandPath(p: string, relativeDir: string): string {
  if (p === "~") return homedir();
  if (p.startsWith("~/")) return join(homedir(), p.slice(2));
  if (isAbsolute(p) || p.startsWith("\\")) return resolve(p);
  return resolve(relativeDir, p);
}

/** A FROM value that can only be meant as a path, so "not found" is an error, not a model name. */
function looksLikePath(v: string): boolean {
  return /^(\.{1,2}[\\/]|[\\/]|~)/.test(v) || /\.(gguf|bin|safetensors|pth)$/i.test(v);
}

async function statOrUndefined(p: string) {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

/** Checks a local GGUF before it is uploaded; the error names the file. */
async function checkGGUF(path: string, where: string): Promise<void> {
  try {
    const h = await readGGUFHeader(path);
    validateGGUFLayout(h, (await stat(path)).size);
  } catch (e) {
    if (e instanceof GGUFError) throw new ModelfileInputError(`${where}: ${e.message.includes(path) ? e.message : `${path}: ${e.message}`}`);
    throw e;
  }
}

/** Files of a model directory (§3.7 discovery), GGUF only for now. */
async function discoverDir(dir: string, where: string): Promise<string[]> {
  const entries = (await readdir(dir)).sort();
  const gguf = entries.filter((e) => e.toLowerCase().endsWith(".gguf")).map((e) => join(dir, e));
  if (gguf.length) return gguf;
  if (entries.some((e) => /\.(safetensors|bin|pth)$/.test(e))) {
    throw new ModelfileInputError(`${where}: ${dir} holds safetensors/PyTorch files; importing them is not supported by this version of corral yet`);
  }
  throw new ModelfileInputError(`${where}: no GGUF, safetensors or PyTorch model files found in ${dir}`);
}

export async function modelfileToRequest(modelfilePath: string | undefined, text: string | Uint8Array, relativeDir: string): Promise<LocalCreateRequest> {
  const label = modelfilePath ?? "Modelfile";
  let commands: ModelfileCommand[];
  try {
    commands = parseModelfile(text);
  } catch (e) {
    if (e instanceof ModelfileError) {
      throw new ModelfileInputError(e.line !== undefined ? `${label} (line ${e.line}): ${e.reason}` : `${label}: ${e.reason}`);
    }
    throw e;
  }
  const req: LocalCreateRequest = { files: [], adapters: [], warnings: [] };
  const params: Record<string, string[]> = {};
  const paramLines: Record<string, number> = {};
  const where = (c: ModelfileCommand): string => `${label} (line ${c.line})`;

  for (const c of commands) {
    switch (c.name) {
      case "model": {
        const p = expandPath(c.args, relativeDir);
        const st = await statOrUndefined(p);
        if (!st) {
          if (looksLikePath(c.args)) throw new ModelfileInputError(`${where(c)}: FROM ${c.args}: no such file or directory (${p})`);
          req.from = c.args;
          break;
        }
        const files = st.isDirectory() ? await discoverDir(p, `${where(c)}: FROM ${c.args}`) : [p];
        for (const f of files) {
          await checkGGUF(f, `${where(c)}: FROM ${c.args}`);
          if (!req.files.includes(f)) req.files.push(f);
        }
        break;
      }
      case "adapter": {
        const p = expandPath(c.args, relativeDir);
        const st = await statOrUndefined(p);
        if (!st) throw new ModelfileInputError(`${where(c)}: ADAPTER ${c.args}: no such file or directory (${p})`);
        const files = st.isDirectory() ? await discoverDir(p, `${where(c)}: ADAPTER ${c.args}`) : [p];
        for (const f of files) await checkGGUF(f, `${where(c)}: ADAPTER ${c.args}`);
        req.adapters = files; // each ADAPTER replaces the previous one (§3.3)
        break;
      }
      case "template":
        req.template = c.args;
        break;
      case "system":
        req.system = c.args;
        break;
      case "license":
        (req.license ??= []).push(c.args);
        break;
      case "message": {
        const i = c.args.indexOf(": ");
        const role = i >= 0 ? c.args.slice(0, i) : c.args;
        const content = i >= 0 ? c.args.slice(i + 2) : "";
        (req.messages ??= []).push({ role, content });
        break;
      }
      case "draft":
      case "renderer":
      case "parser":
      case "requires":
        throw new ModelfileInputError(`${where(c)}: ${c.name.toUpperCase()} is not supported by this version of corral`);
      default: {
        if ((DEPRECATED_PARAMETERS as readonly string[]).includes(c.name)) {
          req.warnings.push(`warning: parameter ${c.name} is deprecated`);
          break;
        }
        (params[c.name] ??= []).push(c.args);
        paramLines[c.name] ??= c.line;
      }
    }
  }
  if (Object.keys(params).length) {
    for (const [k, values] of Object.entries(params)) {
      try {
        Object.assign((req.parameters ??= {}), formatParams({ [k]: values }));
      } catch (e) {
        throw new ModelfileInputError(`${label} (line ${paramLines[k]}): PARAMETER ${k}: ${(e as Error).message}`);
      }
    }
  }
  return req;
}

/** Reads the Modelfile (or, without one, `FROM .` in the current folder). */
export async function readModelfile(path: string | undefined): Promise<{ path: string | undefined; text: string | Uint8Array; dir: string }> {
  if (path !== undefined) {
    const abs = resolve(path);
    const st = await statOrUndefined(abs);
    if (!st) throw new ModelfileInputError(`Modelfile ${path} not found (${abs})`);
    if (st.isDirectory()) throw new ModelfileInputError(`${path} is a directory, not a Modelfile`);
    return { path, text: await readFile(abs), dir: dirname(abs) };
  }
  const def = resolve("Modelfile");
  if (await statOrUndefined(def)) return { path: "Modelfile", text: await readFile(def), dir: process.cwd() };
  return { path: undefined, text: "FROM .\n", dir: process.cwd() };
}

/** §4.1 step 6: one file keeps its base name; several are named relative to their common folder. */
export function transportNames(paths: string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (paths.length === 1) {
    out.set(paths[0]!, basename(paths[0]!));
    return out;
  }
  let common = dirname(paths[0]!);
  for (const p of paths) {
    while (!(p + sep).startsWith(common + sep) && common !== dirname(common)) common = dirname(common);
  }
  for (const p of paths) {
    const rel = relative(common, p).split(sep).join("/");
    out.set(p, rel.startsWith("..") || rel === "" ? basename(p) : rel);
  }
  return out;
}
