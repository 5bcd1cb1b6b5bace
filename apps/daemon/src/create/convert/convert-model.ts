// Hugging Face model directory → GGUF (F16 weights, F32 norms and biases), streamed tensor by
// tensor so that memory stays near the size of a few chunks whatever the checkpoint's size.

import { readFile } from "node:fs/promises";
import { writeGGUF } from "@corral/shared/gguf/index";
import { planArchitecture, type PlannedTensor } from "./architectures.ts";
import { readCheckpoint } from "./checkpoint.ts";
import { ConvertError } from "./errors.ts";
import { SourceFiles, tensorSource } from "./tensor-data.ts";
import { tokenizerKV, type FileSet } from "./tokenizer.ts";

export interface ConvertProgress {
  /** Source bytes to read in all. */
  total: number;
  completed: number;
}

export interface ConvertResult {
  /** general.architecture of the result. */
  arch: string;
  tensors: number;
  size: number;
}

export async function readConfig(files: FileSet): Promise<Record<string, unknown>> {
  const path = files.get("config.json");
  if (!path) throw new ConvertError("config.json is missing; a safetensors or PyTorch model needs its config.json");
  let v: unknown;
  try {
    v = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new ConvertError(`config.json: invalid JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConvertError("config.json: not a JSON object");
  return v as Record<string, unknown>;
}

/**
 * Converts the model in `files` (transport name → path) into a GGUF at `out`. The file appears
 * only when complete. `onProgress` is called as source bytes are consumed.
 */
export async function convertModel(files: FileSet, out: string, onProgress?: (p: ConvertProgress) => void): Promise<ConvertResult> {
  const config = await readConfig(files);
  const refs = await readCheckpoint(files);
  const plan = planArchitecture(config, refs);
  await tokenizerKV(files, config, plan.vocabSize, plan.kv);
  plan.kv.u32("general.file_type", plan.tensors.some((t) => t.type === "F16") ? 1 : 0);
  plan.kv.u32("general.quantization_version", 2);
  return writePlanned(out, { arch: plan.arch, kv: plan.kv.list(), tensors: plan.tensors, onProgress });
}

export interface WritePlannedOptions {
  /** general.architecture, reported back in the result. */
  arch: string;
  kv: Parameters<typeof writeGGUF>[1]["kv"];
  tensors: PlannedTensor[];
  onProgress?: (p: ConvertProgress) => void;
}

/** Writes planned tensors with their metadata; shared with adapter conversion. */
export async function writePlanned(out: string, opts: WritePlannedOptions): Promise<ConvertResult> {
  const { arch, kv, tensors, onProgress } = opts;
  const total = tensors.reduce((n, t) => n + t.parts.reduce((m, p) => m + p.size, 0), 0);
  let completed = 0;
  const sources = new SourceFiles();
  try {
    const { size } = await writeGGUF(out, {
      kv,
      tensors: tensors.map((t) => ({
        name: t.name,
        dims: [...t.shape].reverse(),
        type: t.type === "F16" ? 1 : 0,
        source: tensorSource(t, sources, (n) => {
          completed += n;
          onProgress?.({ total, completed });
        }),
      })),
    });
    return { arch, tensors: tensors.length, size };
  } finally {
    await sources.close();
  }
}
