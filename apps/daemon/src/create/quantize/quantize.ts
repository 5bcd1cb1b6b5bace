// Quantizing a model layer during create (docs/daemon.md, "Create"): llama.cpp's quantizer runs in a child process
// (worker.mjs) on all cores, writing into a temporary file beside the blobs; the result is checked,
// hashed and committed as a new blob. Progress is the share of the source's tensor bytes that
// llama.cpp has finished, read from its per-tensor log lines.

import { spawn, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { readGGUFHeader, ggufNumber, GGUFError } from "@corral/shared/gguf/index";
import { sha256File } from "@corral/shared/digest";
import { MediaType, type Descriptor } from "@corral/shared/manifest";
import { StatusError, type Progress } from "../../errors.ts";
import type { BlobStore } from "../../store/blobs.ts";
import { parseQuantType, sourceFloatType, type QuantType } from "./types.ts";

const WORKER = fileURLToPath(new URL("./worker.mjs", import.meta.url));

/** Ollama's progress-bar key for the quantize line: 19 zeros, not a real digest. */
export const QUANTIZE_PROGRESS_DIGEST = "0000000000000000000";

export class QuantizeCancelledError extends Error {
  constructor() {
    super("quantization cancelled");
    this.name = "QuantizeCancelledError";
  }
}

export interface QuantizeFileOptions {
  /** Threads for llama.cpp; defaults to every core. */
  threads?: number;
  /** Aborting kills the worker; the call then rejects with QuantizeCancelledError. */
  signal?: AbortSignal;
  /** Called as llama.cpp starts tensor `index` (1-based) of `count`. */
  onTensor?: (index: number, count: number, name: string) => void;
}

/**
 * Quantizes the GGUF at `input` to `type`, writing `output` (which is left partial on failure:
 * the caller owns it). Rejects with a StatusError (500) naming llama.cpp's reason on failure.
 */
export function quantizeFile(input: string, output: string, type: QuantType, opts: QuantizeFileOptions = {}): Promise<void> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(new QuantizeCancelledError());
  const threads = opts.threads ?? availableParallelism();
  return new Promise((resolve, reject) => {
    const child = takeWorker();
    child.stdin!.end(JSON.stringify({ input, output, ftype: type.ftype, nthread: threads }) + "\n");
    let stderr = "";
    let error: string | undefined;
    let done = false;
    let cancelled = false;
    const onAbort = (): void => {
      cancelled = true;
      child.kill("SIGKILL");
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    child.stderr!.on("data", (d: Buffer) => {
      if (stderr.length < 16384) stderr += d.toString();
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (typeof msg["tensor"] === "number" && typeof msg["of"] === "number") {
        opts.onTensor?.(msg["tensor"], msg["of"], String(msg["name"] ?? ""));
      } else if (msg["done"] === true) done = true;
      else if (typeof msg["error"] === "string") error = msg["error"];
    });
    child.on("error", (e) => {
      signal?.removeEventListener("abort", onAbort);
      reject(new StatusError(500, `cannot start the quantizer: ${e.message}`));
    });
    child.on("close", (code, sig) => {
      signal?.removeEventListener("abort", onAbort);
      prepareSpare();
      if (cancelled) return reject(new QuantizeCancelledError());
      if (code === 0 && done) return resolve();
      const tail = stderr.trim().split("\n").filter(Boolean).slice(-3).join("; ");
      let why: string;
      if (error) why = error;
      else if (sig === "SIGABRT" || code === 134) why = `llama.cpp aborted${tail ? `: ${tail}` : ""}`;
      else if (sig) why = `the quantizer was killed by ${sig}${tail ? `: ${tail}` : ""}`;
      else why = `the quantizer exited with code ${code}${tail ? `: ${tail}` : ""}`;
      reject(new StatusError(500, `quantizing to ${type.name} failed: ${why}`));
    });
  });
}

/**
 * A worker that has already loaded libllama and checked its layout, waiting for a job. Starting
 * one costs ~0.1 s (Node, koffi, the library), which is most of a small job's time, so after a
 * job the next worker is started in the background. It does not keep the daemon alive.
 */
let spare: ChildProcess | undefined;

function spawnWorker(): ChildProcess {
  return spawn(process.execPath, [WORKER, "--wait"], { stdio: ["pipe", "pipe", "pipe"] });
}

function takeWorker(): ChildProcess {
  const w = spare;
  spare = undefined;
  if (w && w.exitCode === null && w.signalCode === null) {
    w.ref();
    for (const s of [w.stdin, w.stdout, w.stderr] as Array<{ ref?: () => void } | null>) s?.ref?.();
    return w;
  }
  return spawnWorker();
}

function prepareSpare(): void {
  if (spare) return;
  const w = spawnWorker();
  w.unref();
  for (const s of [w.stdin, w.stdout, w.stderr] as Array<{ unref?: () => void } | null>) s?.unref?.();
  w.on("error", () => undefined);
  w.once("exit", () => {
    if (spare === w) spare = undefined;
  });
  spare = w;
}

export interface QuantizedBlob {
  digest: string;
  size: number;
  /** False when an identical blob was already in the store. */
  created: boolean;
}

export interface QuantizeBlobOptions extends Pick<QuantizeFileOptions, "signal" | "threads"> {
  type: QuantType;
  progress: (p: Progress) => void;
}

/**
 * Quantizes the model blob `digest` into a new blob, streaming its progress. Returns undefined
 * when the source already has the requested type (nothing to do). Throws a 400 for a source that
 * is not F32/F16/BF16.
 */
export async function quantizeBlob(blobs: BlobStore, digest: string, opts: QuantizeBlobOptions): Promise<QuantizedBlob | undefined> {
  const { type, progress, ...fileOpts } = opts;
  const source = blobs.path(digest);
  let header;
  try {
    header = await readGGUFHeader(source);
  } catch (e) {
    if (e instanceof GGUFError) throw new StatusError(400, `model layer ${digest}: ${e.problem}`);
    throw e;
  }
  const from = sourceFloatType(header);
  if (from === type.name) return undefined;

  const total = (await blobs.size(digest)) ?? 0;
  const status = `quantizing ${from} model to ${type.name}`;
  const sizes = new Map(header.tensors.map((t) => [t.name, t.size]));
  const tensorBytes = header.tensors.reduce((a, t) => a + t.size, 0) || 1;
  let finishedBytes = 0;
  let current: string | undefined;
  progress({ status, digest: QUANTIZE_PROGRESS_DIGEST, total, completed: 0 });
  const onTensor = (index: number, count: number, name: string): void => {
    // A tensor's line appears as llama.cpp starts it, so the previous one is finished. The
    // counter is the fallback should a name not be found among the source's tensors.
    if (current !== undefined) finishedBytes += sizes.get(current) ?? tensorBytes / count;
    current = name;
    const share = Math.min(1, Math.max(finishedBytes / tensorBytes, (index - 1) / count));
    progress({ status, digest: QUANTIZE_PROGRESS_DIGEST, total, completed: Math.floor(share * total) });
  };

  const tmp = blobs.tempPath();
  try {
    await quantizeFile(source, tmp, type, { ...fileOpts, onTensor });
    progress({ status, digest: QUANTIZE_PROGRESS_DIGEST, total, completed: total });
    progress({ status: "verifying conversion" });
    await verifyOutput(tmp, header.tensors.length, type);
    const { digest: newDigest, size } = await sha256File(tmp);
    const created = await blobs.commit(tmp, newDigest);
    return { digest: newDigest, size, created };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The output must be a readable GGUF of the requested file type with every tensor kept. */
async function verifyOutput(path: string, tensorCount: number, type: QuantType): Promise<void> {
  let h;
  try {
    h = await readGGUFHeader(path);
  } catch (e) {
    throw new StatusError(500, `quantizing to ${type.name} produced an unreadable file: ${(e as Error).message}`);
  }
  const ft = ggufNumber(h, "general.file_type");
  if (ft !== type.ftype) throw new StatusError(500, `quantizing to ${type.name} produced general.file_type ${ft ?? "(missing)"}, expected ${type.ftype}`);
  if (h.tensors.length !== tensorCount) throw new StatusError(500, `quantizing to ${type.name} produced ${h.tensors.length} tensors, expected ${tensorCount}`);
}

/** A create layer: a descriptor plus the progress line create prints for it. */
export type CreateLayer = Descriptor & { status?: string };

export interface QuantizeLayersOptions {
  /** A type name as in the request, or one already parsed. */
  quantize: string | QuantType;
  progress: (p: Progress) => void;
  /** Receives the digests of blobs this step adds to the store. */
  created: string[];
  signal?: AbortSignal;
}

/**
 * The quantize step of create: every GGUF model layer in `layers` is replaced, in place, by its
 * quantized blob. New blobs are appended to `created` so a failed create can drop them again.
 */
export async function quantizeModelLayers(blobs: BlobStore, layers: CreateLayer[], opts: QuantizeLayersOptions): Promise<void> {
  const { quantize, progress, created, signal } = opts;
  const type = typeof quantize === "string" ? parseQuantType(quantize) : quantize;
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i]!;
    if (layer.mediaType !== MediaType.model) continue;
    const r = await quantizeBlob(blobs, layer.digest, { type, progress, signal });
    if (!r) continue;
    if (r.created) created.push(r.digest);
    // The quantized layer is new content: it no longer comes from the base model.
    layers[i] = {
      mediaType: layer.mediaType,
      digest: r.digest,
      size: r.size,
      status: `${r.created ? "creating new" : "using existing"} layer ${r.digest}`,
    };
  }
}
