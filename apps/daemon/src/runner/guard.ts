// Untrusted GGUF files meet llama.cpp here. Some malformed files make llama.cpp abort() the whole
// process, so a model is checked twice before the daemon loads it: its metadata is validated in
// TypeScript, and the first load of each file happens in a throwaway child process. Only a file
// that loaded there is loaded in the daemon.

import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { readGGUFHeader, architecture, ggufNumber, GGUFError, type GGUFHeader } from "@corral/shared/gguf/index";
import { StatusError } from "../errors.ts";

const PROBE = fileURLToPath(new URL("./probe-load.mjs", import.meta.url));

/** File paths that loaded in a probe, keyed by path and size (blobs are content-addressed). */
const verified = new Map<string, Promise<void>>();

function refuse(path: string, why: string): StatusError {
  return new StatusError(500, `model file ${path} cannot be loaded: ${why}`);
}

/** Metadata checks for what llama.cpp asserts on rather than reports. */
export function checkModelMetadata(h: GGUFHeader, path: string): void {
  const arch = architecture(h);
  if (arch === "unknown") throw refuse(path, "general.architecture is missing");
  if (arch === "clip") throw refuse(path, "it is a vision projector, not a language model");
  if (h.tensors.length === 0) throw refuse(path, "it has no tensors");
  const blocks = ggufNumber(h, `${arch}.block_count`);
  if (blocks === undefined || !Number.isInteger(blocks) || blocks <= 0) throw refuse(path, `${arch}.block_count is ${blocks ?? "missing"}, expected a positive integer`);
  const embd = ggufNumber(h, `${arch}.embedding_length`);
  if (embd !== undefined && (!Number.isInteger(embd) || embd <= 0)) throw refuse(path, `${arch}.embedding_length is ${embd}, expected a positive integer`);
  const heads = ggufNumber(h, `${arch}.attention.head_count`);
  if (heads !== undefined && (!Number.isInteger(heads) || heads <= 0)) throw refuse(path, `${arch}.attention.head_count is ${heads}, expected a positive integer`);
  const tokens = h.kv.get("tokenizer.ggml.tokens");
  if (!tokens || !Array.isArray(tokens.value) || tokens.value.length === 0) throw refuse(path, "tokenizer.ggml.tokens is missing or empty");
  for (const key of ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"]) {
    const id = ggufNumber(h, key);
    if (id !== undefined && (id < 0 || id >= tokens.value.length)) throw refuse(path, `${key} is ${id}, outside the vocabulary of ${tokens.value.length} tokens`);
  }
}

function probe(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PROBE, path], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      const last = stderr.trim().split("\n").filter(Boolean).slice(-3).join("; ");
      const how = signal ? `llama.cpp crashed (${signal})` : code === 134 ? "llama.cpp aborted" : `loading failed (exit ${code})`;
      reject(refuse(path, `${how}${last ? `: ${last}` : ""}`));
    });
  });
}

/** Resolves when `path` is safe to load in this process; throws a StatusError otherwise. */
export async function ensureLoadable(path: string): Promise<GGUFHeader> {
  let header: GGUFHeader;
  try {
    header = await readGGUFHeader(path);
  } catch (e) {
    if (e instanceof GGUFError) throw refuse(path, e.problem);
    throw e;
  }
  checkModelMetadata(header, path);
  const key = `${path}:${(await stat(path)).size}`;
  let check = verified.get(key);
  if (!check) {
    check = probe(path);
    verified.set(key, check);
    check.catch(() => verified.delete(key));
  }
  await check;
  return header;
}
