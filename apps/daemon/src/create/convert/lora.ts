// Safetensors LoRA adapters (PEFT adapter_model.safetensors + adapter_config.json, or MLX
// adapters.safetensors) → a GGUF LoRA for the base model, as llama.cpp loads it:
// blk.N.<module>.weight.lora_a with ggml dims [in, rank] and .lora_b with [rank, out], F16, and
// general.type=adapter, adapter.type=lora, adapter.lora.alpha. For llama-family bases the rotary
// permutation of q/k rows is applied to lora_b, the side that produces the permuted rows, so that
// B·A equals the permuted weight delta.

import { readFile } from "node:fs/promises";
import { decodeToF32, type SourceDType } from "./dtype.ts";
import { ConvertError } from "./errors.ts";
import { KVList } from "./kv-list.ts";
import type { PlannedTensor } from "./architectures.ts";
import { readSafetensors } from "./safetensors.ts";
import { writePlanned, type ConvertProgress, type ConvertResult } from "./convert-model.ts";
import type { FileSet } from "./tokenizer.ts";
import { SourceFiles } from "./tensor-data.ts";

/** What the adapter needs to know of its base model. */
export interface AdapterBase {
  /** general.architecture of the base GGUF. */
  arch: string;
  headCount?: number;
  headCountKV?: number;
  /** GGUF dims of the base's tensors by name, to check the adapter fits; omitted = unchecked. */
  tensorDims?: ReadonlyMap<string, readonly number[]>;
}

const MODULES: Record<string, string> = {
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};
/** Bases whose q/k rows llama.cpp permutes for its rotary layout. */
const PERMUTED_ARCHS = new Set(["llama"]);

const NAME = /^(?:base_model\.model\.)?model\.layers\.(\d+)\.(.+)\.(lora_A\.weight|lora_B\.weight|lora_a|lora_b)$/;

async function adapterConfig(files: FileSet): Promise<{ alpha: number; rank?: number }> {
  const path = files.get("adapter_config.json");
  if (!path) throw new ConvertError("adapter_config.json is missing; it gives the LoRA alpha");
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new ConvertError(`adapter_config.json: invalid JSON (${(e as Error).message})`);
  }
  const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  const mlx = c["lora_parameters"] as Record<string, unknown> | undefined;
  const rank = num(c["r"]) ?? num(mlx?.["rank"]);
  const alpha = num(c["lora_alpha"]) ?? num(mlx?.["alpha"]) ?? (num(mlx?.["scale"]) !== undefined && rank !== undefined ? num(mlx?.["scale"])! * rank : undefined);
  if (alpha === undefined) throw new ConvertError(`adapter_config.json: no LoRA alpha (expected "lora_alpha", or "lora_parameters" with "alpha" or "scale" and "rank")`);
  return rank === undefined ? { alpha } : { alpha, rank };
}

function permuteRows(v: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const out = new Float32Array(v.length);
  const block = rows / heads;
  const half = block / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * block + j * half + i) * cols;
        out.set(v.subarray(from, from + cols), (h * block + 2 * i + j) * cols);
      }
    }
  }
  return out;
}

function transpose(v: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c]!;
  return out;
}

export async function convertAdapter(files: FileSet, base: AdapterBase, out: string, onProgress?: (p: ConvertProgress) => void): Promise<ConvertResult> {
  const weights = [...files.keys()].filter((n) => n.endsWith(".safetensors"));
  if (weights.length !== 1) throw new ConvertError(`expected one adapter .safetensors file (adapter_model.safetensors or adapters.safetensors), got ${weights.length ? weights.join(", ") : "none"}`);
  const file = weights[0]!;
  const { alpha, rank } = await adapterConfig(files);
  const { tensors: refs } = await readSafetensors(files.get(file)!, file);
  const permute = PERMUTED_ARCHS.has(base.arch);
  const sources = new SourceFiles();

  const planned: PlannedTensor[] = [];
  for (const ref of refs) {
    const m = NAME.exec(ref.name);
    const module = m ? MODULES[m[2]!] : undefined;
    if (!m || !module) throw new ConvertError(`${file}: tensor ${JSON.stringify(ref.name)} is not a LoRA weight of a known module (${Object.keys(MODULES).join(", ")})`);
    if (ref.dtype !== "F32" && ref.dtype !== "F16" && ref.dtype !== "BF16") throw new ConvertError(`${file}: tensor ${JSON.stringify(ref.name)} is ${ref.dtype}; only F32, F16 and BF16 can be converted`);
    if (ref.shape.length !== 2) throw new ConvertError(`${file}: tensor ${JSON.stringify(ref.name)} has shape [${ref.shape.join(", ")}]; LoRA weights are matrices`);
    const isA = m[3]!.toLowerCase().startsWith("lora_a");
    // PEFT stores A as [rank, in] and B as [out, rank] (torch Linear layout); MLX stores the
    // transposes (x·A·B), recognisable by its lower-case names.
    const mlx = m[3] === "lora_a" || m[3] === "lora_b";
    const [d0, d1] = ref.shape as [number, number];
    const shape = mlx ? [d1, d0] : [d0, d1]; // now PEFT layout
    const r = isA ? shape[0]! : shape[1]!;
    if (rank !== undefined && r !== rank) throw new ConvertError(`${file}: tensor ${JSON.stringify(ref.name)} has rank ${r}, adapter_config.json says ${rank}`);
    const target = `blk.${m[1]}.${module}.weight`;
    const name = `${target}.${isA ? "lora_a" : "lora_b"}`;
    let heads: number | undefined;
    if (permute && !isA && (module === "attn_q" || module === "attn_k")) {
      heads = module === "attn_q" ? base.headCount : (base.headCountKV ?? base.headCount);
      if (!heads) throw new ConvertError(`the base model has no ${base.arch}.attention.head_count, needed to convert ${ref.name}`);
      if (shape[0]! % (2 * heads) !== 0) throw new ConvertError(`${file}: tensor ${JSON.stringify(ref.name)} has ${shape[0]} output rows, not a whole number of ${heads} rotary heads`);
    }
    const baseDims = base.tensorDims?.get(target);
    if (base.tensorDims) {
      if (!baseDims) throw new ConvertError(`${file}: tensor ${JSON.stringify(ref.name)} adapts ${target}, which the base model does not have`);
      const fits = isA ? baseDims[0] === shape[1] : baseDims[1] === shape[0];
      if (!fits) throw new ConvertError(`${file}: tensor ${JSON.stringify(ref.name)} has shape [${ref.shape.join(", ")}], which does not fit the base's ${target} [${baseDims.join(", ")}]`);
    }
    planned.push({
      name,
      shape,
      type: "F16",
      parts: [ref],
      compute: async () => {
        const fh = await sources.get(ref.path);
        const buf = Buffer.allocUnsafe(ref.size);
        const { bytesRead } = await fh.read(buf, 0, ref.size, ref.offset);
        if (bytesRead !== ref.size) throw new ConvertError(`${file}: ends inside tensor ${JSON.stringify(ref.name)}`);
        let v = decodeToF32(buf, ref.dtype as SourceDType);
        if (mlx) v = transpose(v, d0, d1);
        if (heads) v = permuteRows(v, shape[0]!, shape[1]!, heads);
        return v;
      },
    });
  }
  if (planned.length === 0) throw new ConvertError(`${file}: no LoRA tensors`);
  planned.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const kv = new KVList()
    .str("general.architecture", base.arch)
    .str("general.type", "adapter")
    .u32("general.file_type", 1)
    .str("adapter.type", "lora")
    .f32("adapter.lora.alpha", alpha)
    .u32(`${base.arch}.attention.head_count`, base.headCount)
    .u32(`${base.arch}.attention.head_count_kv`, base.headCountKV);
  try {
    // The values are computed from whole tensors, so progress counts them as they are read.
    return await writePlanned(out, { arch: base.arch, kv: kv.list(), tensors: planned, onProgress });
  } finally {
    await sources.close();
  }
}
