// Turns a Modelfile into a create request on the client side (docs/daemon.md, "Modelfile"): paths are expanded against
// the Modelfile's folder, files are checked and hashed locally so that a bad file is reported with
// its own path before anything is uploaded.

import { open, readdir, readFile, realpath, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { parseModelfile, ModelfileError, type ModelfileCommand } from "@corral/shared/modelfile/parser";
import { DEPRECATED_PARAMETERS, formatParams } from "@corral/shared/modelfile/params";
import { GGUFError, readGGUFHeader, validateGGUFLayout } from "@corral/shared/gguf/index";
import { CLIError } from "./errors.ts";

/** A Modelfile or a file it names that cannot be used; shown as one `Error:` line like every CLIError. */
export class ModelfileInputError extends CLIError {
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
  /** The DRAFT model's files. */
  draftFiles: string[];
  template?: string;
  system?: string;
  renderer?: string;
  parser?: string;
  requires?: string;
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

/**
 * DRAFT names a second, smaller model; the same file or folder as FROM (after symlinks) is a
 * mistake Ollama refuses with this message.
 */
async function refuseSamePath(path: string, others: readonly string[], where: string): Promise<void> {
  const real = await realpath(path);
  for (const o of others) {
    if ((await realpath(o)) === real) throw new ModelfileInputError(`${where}: DRAFT must not reference the same local path as FROM: ${path}`);
  }
}

/** Go's golang.org/x/mod/semver validity: vMAJOR[.MINOR[.PATCH[-pre][+build]]], no leading zeros. */
export function isGoSemver(v: string): boolean {
  const num = "(0|[1-9][0-9]*)";
  const ident = "[0-9A-Za-z-]+";
  const pre = `(-(${ident})(\\.${ident})*)?`;
  const build = `(\\+${ident}(\\.${ident})*)?`;
  if (!new RegExp(`^v${num}(\\.${num}(\\.${num}${pre}${build})?)?$`).test(v)) return false;
  // Numeric pre-release identifiers may not have leading zeros either.
  const m = /^[^-+]*-([^+]*)/.exec(v);
  return !m || m[1]!.split(".").every((id) => !/^0[0-9]+$/.test(id));
}

/** Shell-style match of a file name against a pattern with `*` wildcards. */
function matches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(name);
}

/** Entries of `dir` (and, for a `*\/` pattern, of its subfolders) matching a pattern, sorted. */
async function glob(dir: string, pattern: string): Promise<string[]> {
  const nested = pattern.startsWith("*/");
  const leaf = nested ? pattern.slice(2) : pattern;
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    if (nested) {
      if (!e.isDirectory() && !(e.isSymbolicLink() && (await statOrUndefined(join(dir, e.name)))?.isDirectory())) continue;
      const sub = await readdir(join(dir, e.name)).catch(() => [] as string[]);
      for (const f of sub) if (matches(leaf, f)) out.push(join(dir, e.name, f));
    } else if (matches(leaf, e.name) && !e.isDirectory()) {
      out.push(join(dir, e.name));
    }
  }
  return out.sort();
}

/** Go's http.DetectContentType distinguishes text from binary by the first 512 bytes. */
function looksLikeText(head: Buffer): boolean {
  for (const b of head) {
    if (b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f)) return false;
  }
  return true;
}

/** The first 512 bytes of a file: what every check of a file's kind here looks at. */
async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The first line of a Git LFS pointer file, which a clone without `git lfs` leaves in place of the weights. */
const LFS_POINTER = "version https://git-lfs.github.com/spec/";

function isLFSPointer(head: Buffer): boolean {
  return head.subarray(0, LFS_POINTER.length).toString("latin1") === LFS_POINTER;
}

/** Whether the first bytes are a ZIP archive, as PyTorch checkpoints are. */
function looksLikeZip(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === 0x04034b50;
}

/**
 * A weight pattern and the content its files must have, as Ollama's client sniffs them: a
 * pattern whose files are not all of that kind (a Git LFS pointer is text) counts as matching
 * nothing, and the next pattern is tried. Safetensors files are not sniffed (some are not
 * recognised as binary), but a pointer among them is refused below.
 */
interface WeightRule {
  patterns: string[];
  content?: "binary" | "zip";
}

/**
 * Files of a model directory (docs/daemon.md, "Modelfile"): the first weight pattern that matches wins, then
 * the configuration and tokenizer files beside them (for GGUF weights too, as Ollama's client
 * sends them). For ADAPTER, LoRA weight files are looked for first. Symlinks are resolved and must
 * stay inside the directory.
 */
async function discoverDir(dir: string, where: string, kind: "model" | "adapter" = "model"): Promise<string[]> {
  const rules: WeightRule[] = [
    ...(kind === "adapter" ? [{ patterns: ["adapter_model*.safetensors"] }, { patterns: ["adapters*.safetensors"] }] : []),
    { patterns: ["model*.safetensors", "*/model*.safetensors"] },
    { patterns: ["consolidated*.safetensors"] },
    { patterns: ["pytorch_model*.bin"], content: "zip" },
    { patterns: ["consolidated*.pth"], content: "zip" },
    { patterns: ["*.gguf"], content: "binary" },
    { patterns: ["*.bin"], content: "binary" },
  ];
  const pointers: string[] = [];
  let weights: string[] = [];
  for (const rule of rules) {
    const found: string[] = [];
    for (const p of rule.patterns) found.push(...(await glob(dir, p)));
    let usable = found.length > 0;
    for (const f of found) {
      const head = await readHead(f);
      if (isLFSPointer(head)) {
        pointers.push(relative(dir, f));
        usable = false;
      } else if (rule.content === "zip" ? !looksLikeZip(head) : rule.content === "binary" && looksLikeText(head)) {
        usable = false;
      }
    }
    if (usable) {
      weights = found;
      break;
    }
  }
  if (!weights.length) {
    const lfs = pointers.length ? ` (${pointers.join(", ")} ${pointers.length === 1 ? "is a Git LFS pointer" : "are Git LFS pointers"}, not weights: run \`git lfs pull\` in ${dir})` : "";
    throw new ModelfileInputError(`${where}: no Modelfile or safetensors files found in ${dir}${lfs}`);
  }
  const files = [...weights];
  // Configuration and tokenizer files go with any weights: checkpoints need them, and for GGUF
  // weights the daemon keeps none of them (docs/daemon.md, "Create").
  for (const f of [...(await glob(dir, "*.json")), ...(await glob(dir, "*/*.json"))]) {
    if (!looksLikeText(await readHead(f))) throw new ModelfileInputError(`${where}: invalid content type: expected application/octet-stream for ${f}`);
    files.push(f);
  }
  files.push(...(await glob(dir, "chat_template.jinja")));
  const tok = await glob(dir, "tokenizer.model");
  files.push(...(tok.length ? tok : await glob(dir, "*/tokenizer.model")));
  const root = await realpath(dir);
  const out: string[] = [];
  for (const f of files) {
    const real = await realpath(f);
    const rel = relative(root, real);
    if (rel.startsWith("..") || isAbsolute(rel)) {
      const shown = relative(dir, f);
      throw new ModelfileInputError(`${where}: insecure path: ${shown}${rel.includes(".cache") ? "\n\nUse --local-dir <dir> when downloading model to disable caching" : ""}`);
    }
    if (!out.includes(real)) out.push(real);
  }
  return out;
}

/** Only GGUF files are checked locally; checkpoints are validated by the conversion. */
function isGGUFCandidate(path: string): boolean {
  return !/\.(safetensors|json|jinja|model|pth)$/i.test(path) && !/(^|[\\/])pytorch_model[^\\/]*\.bin$/i.test(path);
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
  const req: LocalCreateRequest = { files: [], adapters: [], draftFiles: [], warnings: [] };
  const where = (c: ModelfileCommand): string => `${label} (line ${c.line})`;
  // FROM and DRAFT paths, to refuse a DRAFT that is the FROM model itself (in either order).
  const fromPaths: string[] = [];
  const draftPaths: string[] = [];

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
        await refuseSamePath(p, draftPaths, where(c));
        fromPaths.push(p);
        const files = st.isDirectory() ? await discoverDir(p, `${where(c)}: FROM ${c.args}`) : [p];
        for (const f of files) {
          if (isGGUFCandidate(f)) await checkGGUF(f, `${where(c)}: FROM ${c.args}`);
          if (!req.files.includes(f)) req.files.push(f);
        }
        break;
      }
      case "adapter": {
        const p = expandPath(c.args, relativeDir);
        const st = await statOrUndefined(p);
        if (!st) throw new ModelfileInputError(`${where(c)}: ADAPTER ${c.args}: no such file or directory (${p})`);
        const files = st.isDirectory() ? await discoverDir(p, `${where(c)}: ADAPTER ${c.args}`, "adapter") : [p];
        // A LoRA named by its weights file still needs the adapter_config.json beside it.
        if (!st.isDirectory() && p.endsWith(".safetensors")) {
          const config = join(dirname(p), "adapter_config.json");
          if (await statOrUndefined(config)) files.push(config);
        }
        for (const f of files) if (isGGUFCandidate(f)) await checkGGUF(f, `${where(c)}: ADAPTER ${c.args}`);
        req.adapters = files; // each ADAPTER replaces the previous one (docs/daemon.md, "Modelfile")
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
      case "draft": {
        const p = expandPath(c.args, relativeDir);
        const st = await statOrUndefined(p);
        if (!st) throw new ModelfileInputError(`${where(c)}: DRAFT ${c.args}: no such file or directory (${p})`);
        await refuseSamePath(p, fromPaths, where(c));
        draftPaths.push(p);
        const files = st.isDirectory() ? await discoverDir(p, `${where(c)}: DRAFT ${c.args}`) : [p];
        for (const f of files) {
          if (isGGUFCandidate(f)) await checkGGUF(f, `${where(c)}: DRAFT ${c.args}`);
          if (!req.draftFiles.includes(f)) req.draftFiles.push(f);
        }
        break;
      }
      case "renderer":
        req.renderer = c.args;
        break;
      case "parser":
        req.parser = c.args;
        break;
      case "requires": {
        const version = c.args.startsWith("v") ? c.args : `v${c.args}`;
        if (!isGoSemver(version)) throw new ModelfileInputError(`${where(c)}: requires must be a valid semver (e.g. 0.14.0)`);
        req.requires = version.slice(1);
        break;
      }
      default: {
        if ((DEPRECATED_PARAMETERS as readonly string[]).includes(c.name)) {
          req.warnings.push(`warning: parameter ${c.name} is deprecated`);
          break;
        }
        // Each PARAMETER line on its own, as Ollama reads them: a repeated list parameter (stop)
        // gathers every value, a repeated single value is replaced by the later line.
        let value: unknown;
        try {
          value = formatParams({ [c.name]: [c.args] })[c.name];
        } catch (e) {
          throw new ModelfileInputError(`${label} (line ${c.line}): PARAMETER ${c.name}: ${(e as Error).message}`);
        }
        const params = (req.parameters ??= {});
        const earlier = params[c.name];
        params[c.name] = Array.isArray(earlier) && Array.isArray(value) ? [...(earlier as unknown[]), ...value] : value;
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

/** Transport names (docs/daemon.md, "Modelfile"): one file keeps its base name; several are named relative to their common folder. */
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
