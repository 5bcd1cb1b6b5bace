// What each supported Hugging Face architecture becomes in GGUF: the llama.cpp architecture
// name, its hyper-parameter keys, and the mapping of checkpoint tensors to GGUF tensors (names,
// output type, the rotary q/k row permutation, Gemma's norm offset, stacked MoE experts).

import type { OutDType } from "./dtype.ts";
import { ConvertError } from "./errors.ts";
import { ConfigReader } from "./hparams.ts";
import { KVList } from "./kv-list.ts";
import type { TensorRef } from "./tensor-ref.ts";

export const SUPPORTED_ARCHITECTURES = [
  "LlamaForCausalLM",
  "MistralForCausalLM",
  "MixtralForCausalLM",
  "GemmaForCausalLM",
  "Gemma2ForCausalLM",
  "Phi3ForCausalLM",
  "Qwen2ForCausalLM",
] as const;
export type SupportedArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/** One tensor of the output file, with how to make it. */
export interface PlannedTensor {
  name: string;
  /** Row-major shape (outermost first); the GGUF dims are this reversed. */
  shape: number[];
  type: OutDType;
  /** Source tensors, concatenated along the first dimension (more than one for stacked experts). */
  parts: TensorRef[];
  /** Apply the rotary permutation to rows, with this many heads. */
  permuteHeads?: number;
  /** Add 1 to every value (Gemma stores its RMS norm weights minus one). */
  addOne?: boolean;
  /** Computed values, instead of parts. */
  values?: Float32Array;
  /** Values computed when the tensor is written (small tensors that need a whole-tensor transform). */
  compute?: () => Promise<Float32Array>;
}

export interface ArchitecturePlan {
  /** general.architecture */
  arch: string;
  kv: KVList;
  tensors: PlannedTensor[];
  /** Rows of the token embedding: the vocabulary size the tokenizer must be fitted to. */
  vocabSize: number;
}

interface Family {
  arch: string;
  /** Rotary layout of q/k rows differs between HF and llama.cpp (llama's interleaved rope). */
  permuteQK: boolean;
  gemmaNorms: boolean;
  /** Gemma ties output to the embedding and llama.cpp has no output tensor for it. */
  dropLmHead: boolean;
}

const FAMILIES: Record<SupportedArchitecture, Family> = {
  LlamaForCausalLM: { arch: "llama", permuteQK: true, gemmaNorms: false, dropLmHead: false },
  MistralForCausalLM: { arch: "llama", permuteQK: true, gemmaNorms: false, dropLmHead: false },
  MixtralForCausalLM: { arch: "llama", permuteQK: true, gemmaNorms: false, dropLmHead: false },
  GemmaForCausalLM: { arch: "gemma", permuteQK: false, gemmaNorms: true, dropLmHead: true },
  Gemma2ForCausalLM: { arch: "gemma2", permuteQK: false, gemmaNorms: true, dropLmHead: true },
  Phi3ForCausalLM: { arch: "phi3", permuteQK: false, gemmaNorms: false, dropLmHead: false },
  Qwen2ForCausalLM: { arch: "qwen2", permuteQK: false, gemmaNorms: false, dropLmHead: false },
};

/** The architecture config.json names, or an error naming it and the supported list. */
export function architectureOf(config: Record<string, unknown>): SupportedArchitecture {
  const list = config["architectures"];
  const name = Array.isArray(list) && typeof list[0] === "string" ? list[0] : undefined;
  if (!name) throw new ConvertError(`config.json: "architectures" must list the model class, e.g. ["LlamaForCausalLM"]; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(name)) {
    throw new ConvertError(`unsupported architecture "${name}"; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`);
  }
  return name as SupportedArchitecture;
}

const TOP_LEVEL: Record<string, string> = {
  "model.embed_tokens.weight": "token_embd.weight",
  "model.norm.weight": "output_norm.weight",
  "lm_head.weight": "output.weight",
};

function layerName(suffix: string, arch: string): string | undefined {
  const gemma2 = arch === "gemma2";
  const table: Record<string, string> = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": gemma2 ? "post_attention_norm.weight" : "ffn_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.o_proj.bias": "attn_output.bias",
    "self_attn.qkv_proj.weight": "attn_qkv.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "mlp.gate_up_proj.weight": "ffn_up.weight",
    "block_sparse_moe.gate.weight": "ffn_gate_inp.weight",
  };
  return table[suffix];
}

const EXPERT = /^block_sparse_moe\.experts\.(\d+)\.(w1|w2|w3)\.weight$/;
const EXPERT_NAMES: Record<string, string> = { w1: "ffn_gate_exps.weight", w3: "ffn_up_exps.weight", w2: "ffn_down_exps.weight" };
/** Buffers some checkpoints carry that are recomputed at run time. */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$|(^|\.)masked_bias$|(^|\.)attn\.bias$/;

/** llama.cpp keeps these in F32 whatever the requested type: small, and precision-sensitive. */
function outputType(ggufName: string, shape: readonly number[]): OutDType {
  if (shape.length <= 1 || ggufName.endsWith(".bias") || ggufName.endsWith("ffn_gate_inp.weight")) return "F32";
  return "F16";
}

export function planArchitecture(config: Record<string, unknown>, refs: readonly TensorRef[]): ArchitecturePlan {
  const hfArch = architectureOf(config);
  const family = FAMILIES[hfArch];
  const c = new ConfigReader(config);
  const { arch } = family;
  const nHead = c.int("num_attention_heads");
  const nHeadKV = c.optInt("num_key_value_heads") ?? nHead;
  const nEmbd = c.int("hidden_size");
  const nLayer = c.int("num_hidden_layers");

  const tensors: PlannedTensor[] = [];
  const experts = new Map<string, Map<number, TensorRef>>();
  for (const ref of refs) {
    if (IGNORED.test(ref.name)) continue;
    let name = TOP_LEVEL[ref.name];
    let permuteHeads: number | undefined;
    if (ref.name === "lm_head.weight" && family.dropLmHead) continue;
    if (!name) {
      const m = /^model\.layers\.(\d+)\.(.+)$/.exec(ref.name);
      if (!m) throw new ConvertError(`${ref.file}: tensor ${JSON.stringify(ref.name)} has no GGUF name for ${hfArch}`);
      const layer = Number(m[1]);
      if (layer >= nLayer) throw new ConvertError(`${ref.file}: tensor ${JSON.stringify(ref.name)} is in layer ${layer}, but config.json has num_hidden_layers ${nLayer}`);
      const ex = EXPERT.exec(m[2]!);
      if (ex) {
        const key = `blk.${layer}.${EXPERT_NAMES[ex[2]!]}`;
        let group = experts.get(key);
        if (!group) experts.set(key, (group = new Map()));
        group.set(Number(ex[1]), ref);
        continue;
      }
      if (IGNORED.test(m[2]!)) continue;
      const suffix = layerName(m[2]!, arch);
      if (!suffix) throw new ConvertError(`${ref.file}: tensor ${JSON.stringify(ref.name)} has no GGUF name for ${hfArch}`);
      name = `blk.${layer}.${suffix}`;
      if (family.permuteQK && /^self_attn\.q_proj\./.test(m[2]!)) permuteHeads = nHead;
      if (family.permuteQK && /^self_attn\.k_proj\./.test(m[2]!)) permuteHeads = nHeadKV;
    }
    checkConvertible(ref);
    const t: PlannedTensor = { name, shape: [...ref.shape], type: outputType(name, ref.shape), parts: [ref] };
    if (permuteHeads !== undefined) {
      const rows = ref.shape[0] ?? 0;
      if (rows % (permuteHeads * 2) !== 0) throw new ConvertError(`${ref.file}: tensor ${JSON.stringify(ref.name)} has ${rows} rows, not a whole number of ${permuteHeads} rotary heads`);
      t.permuteHeads = permuteHeads;
    }
    if (family.gemmaNorms && name.endsWith("norm.weight")) t.addOne = true;
    tensors.push(t);
  }

  const nExpert = c.optInt("num_local_experts");
  for (const [name, group] of experts) {
    if (!nExpert) throw new ConvertError(`config.json: the checkpoint has expert tensors (${name}) but no "num_local_experts"`);
    const parts: TensorRef[] = [];
    for (let e = 0; e < nExpert; e++) {
      const ref = group.get(e);
      if (!ref) throw new ConvertError(`expert ${e} of ${name} is missing from the checkpoint (num_local_experts is ${nExpert})`);
      checkConvertible(ref);
      if (parts[0] && ref.shape.join() !== parts[0].shape.join()) throw new ConvertError(`${ref.file}: expert tensor ${JSON.stringify(ref.name)} has shape [${ref.shape.join(", ")}], expert 0 has [${parts[0].shape.join(", ")}]`);
      parts.push(ref);
    }
    if (group.size > nExpert) throw new ConvertError(`${name}: the checkpoint has ${group.size} experts, config.json num_local_experts is ${nExpert}`);
    tensors.push({ name, shape: [nExpert, ...parts[0]!.shape], type: "F16", parts });
  }

  const embd = tensors.find((t) => t.name === "token_embd.weight");
  if (!embd) throw new ConvertError(`the checkpoint has no model.embed_tokens.weight`);
  const vocabSize = embd.shape[0]!;

  const kv = new KVList();
  kv.str("general.architecture", arch);
  const nameOrPath = c.optString("_name_or_path");
  if (nameOrPath) kv.str("general.name", nameOrPath.split("/").pop()!);
  hyperParameters({ arch, kv, tensors }, c, hfArch, { nHead, nHeadKV, nEmbd, nLayer, vocabSize });

  // Tensors are written in a stable, llama.cpp-like order: globals first, then layer by layer.
  const order = (n: string): [number, string] => {
    const m = /^blk\.(\d+)\./.exec(n);
    return m ? [Number(m[1]), n] : [-1, n];
  };
  tensors.sort((a, b) => {
    const [la, na] = order(a.name);
    const [lb, nb] = order(b.name);
    return la - lb || (na < nb ? -1 : na > nb ? 1 : 0);
  });
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new ConvertError(`two checkpoint tensors map to ${t.name}`);
    seen.add(t.name);
  }
  return { arch, kv, tensors, vocabSize };
}

function checkConvertible(ref: TensorRef): void {
  if (ref.dtype !== "F32" && ref.dtype !== "F16" && ref.dtype !== "BF16") {
    throw new ConvertError(`${ref.file}: tensor ${JSON.stringify(ref.name)} is ${ref.dtype}; only F32, F16 and BF16 weights can be converted`);
  }
  if (ref.shape.length === 0 || ref.shape.length > 4) throw new ConvertError(`${ref.file}: tensor ${JSON.stringify(ref.name)} has ${ref.shape.length} dimensions; 1 to 4 are supported`);
}

/** The plan being filled in: hyper-parameters go to kv, computed tensors (rope factors) to tensors. */
type PlanOutput = Pick<ArchitecturePlan, "arch" | "kv" | "tensors">;

interface Dims {
  nHead: number;
  nHeadKV: number;
  nEmbd: number;
  nLayer: number;
  vocabSize: number;
}

function hyperParameters(out: PlanOutput, c: ConfigReader, hfArch: SupportedArchitecture, d: Dims): void {
  const { arch, kv } = out;
  const a = (k: string): string => `${arch}.${k}`;
  const headDim = c.optInt("head_dim");
  const ctx = c.optInt("max_position_embeddings", "n_ctx", "max_sequence_length", "seq_length");
  kv.u32(a("vocab_size"), d.vocabSize);
  kv.u32(a("context_length"), ctx);
  kv.u32(a("embedding_length"), d.nEmbd);
  kv.u32(a("block_count"), d.nLayer);
  kv.u32(a("feed_forward_length"), c.int("intermediate_size"));
  kv.u32(a("attention.head_count"), d.nHead);
  kv.u32(a("attention.head_count_kv"), d.nHeadKV);
  kv.f32(a("attention.layer_norm_rms_epsilon"), c.optNumber("rms_norm_eps") ?? 1e-6);
  kv.f32(a("rope.freq_base"), c.optNumber("rope_theta"));
  if (headDim !== undefined && headDim !== d.nEmbd / d.nHead) {
    kv.u32(a("attention.key_length"), headDim);
    kv.u32(a("attention.value_length"), headDim);
  }

  switch (hfArch) {
    case "LlamaForCausalLM":
    case "MistralForCausalLM":
    case "MixtralForCausalLM":
    case "Qwen2ForCausalLM": {
      const rotary = headDim ?? d.nEmbd / d.nHead;
      kv.u32(a("rope.dimension_count"), rotary);
      ropeScaling(out, c, rotary);
      if (hfArch === "MixtralForCausalLM") {
        kv.u32(a("expert_count"), c.int("num_local_experts"));
        kv.u32(a("expert_used_count"), c.int("num_experts_per_tok"));
      }
      break;
    }
    case "GemmaForCausalLM":
    case "Gemma2ForCausalLM": {
      const hd = headDim ?? d.nEmbd / d.nHead;
      kv.u32(a("attention.key_length"), hd);
      kv.u32(a("attention.value_length"), hd);
      if (hfArch === "Gemma2ForCausalLM") {
        kv.f32(a("attn_logit_softcapping"), c.optNumber("attn_logit_softcapping"));
        kv.f32(a("final_logit_softcapping"), c.optNumber("final_logit_softcapping"));
        kv.u32(a("attention.sliding_window"), c.optInt("sliding_window"));
      }
      break;
    }
    case "Phi3ForCausalLM":
      phi3Rope(out, c, d, ctx);
      break;
  }
}

function ropeScaling(out: PlanOutput, c: ConfigReader, rotaryDim: number): void {
  const { arch, kv, tensors } = out;
  const s = c.optObject("rope_scaling");
  if (!s) return;
  const type = (s["rope_type"] ?? s["type"]) as string | undefined;
  const factor = typeof s["factor"] === "number" ? s["factor"] : undefined;
  const original = typeof s["original_max_position_embeddings"] === "number" ? s["original_max_position_embeddings"] : undefined;
  if (type === "linear" && factor !== undefined) {
    kv.str(`${arch}.rope.scaling.type`, "linear");
    kv.f32(`${arch}.rope.scaling.factor`, factor);
  } else if (type === "yarn" && factor !== undefined) {
    kv.str(`${arch}.rope.scaling.type`, "yarn");
    kv.f32(`${arch}.rope.scaling.factor`, factor);
    kv.u32(`${arch}.rope.scaling.original_context_length`, original);
  } else if (type === "llama3") {
    tensors.push({ name: "rope_freqs.weight", shape: [rotaryDim / 2], type: "F32", parts: [], values: llama3RopeFactors(s, c.optNumber("rope_theta") ?? 10000, rotaryDim) });
  } else if (type !== undefined && type !== "default") {
    throw new ConvertError(`config.json: rope_scaling type "${type}" is not supported for ${arch}; supported: linear, yarn, llama3`);
  }
}

/** Llama 3.1's frequency-dependent rope scaling, as per-dimension divisors of the base frequency. */
function llama3RopeFactors(s: Record<string, unknown>, theta: number, dim: number): Float32Array {
  const num = (k: string, dflt: number): number => (typeof s[k] === "number" ? (s[k] as number) : dflt);
  const factor = num("factor", 8);
  const low = num("low_freq_factor", 1);
  const high = num("high_freq_factor", 4);
  const original = num("original_max_position_embeddings", 8192);
  const lowWavelen = original / low;
  const highWavelen = original / high;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim; i += 2) {
    const wavelen = (2 * Math.PI) / Math.pow(theta, -i / dim);
    let f: number;
    if (wavelen < highWavelen) f = 1;
    else if (wavelen > lowWavelen) f = factor;
    else {
      const smooth = (original / wavelen - low) / (high - low);
      f = 1 / ((1 - smooth) / factor + smooth);
    }
    out[i / 2] = f;
  }
  return out;
}

function phi3Rope(out: PlanOutput, c: ConfigReader, d: Dims, ctx: number | undefined): void {
  const { kv, tensors } = out;
  const partial = c.optNumber("partial_rotary_factor") ?? 1;
  const rotary = Math.floor((partial * d.nEmbd) / d.nHead);
  const original = c.optInt("original_max_position_embeddings") ?? ctx;
  kv.u32("phi3.rope.dimension_count", rotary);
  kv.u32("phi3.rope.scaling.original_context_length", original);
  kv.u32("phi3.attention.sliding_window", c.optInt("sliding_window"));
  const s = c.optObject("rope_scaling");
  if (!s) return;
  const type = (s["type"] ?? s["rope_type"]) as string | undefined;
  if (type !== "su" && type !== "longrope") throw new ConvertError(`config.json: rope_scaling type "${type}" is not supported for Phi3; supported: su, longrope`);
  const scale = (ctx ?? 0) / (original ?? 1);
  const attnFactor = scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(original ?? 1)) : 1;
  kv.f32("phi3.rope.scaling.attn_factor", attnFactor);
  for (const [key, name] of [["long_factor", "rope_factors_long.weight"], ["short_factor", "rope_factors_short.weight"]] as const) {
    const f = s[key];
    if (!Array.isArray(f) || f.length !== rotary / 2 || !f.every((x) => typeof x === "number")) {
      throw new ConvertError(`config.json: rope_scaling.${key} must be ${rotary / 2} numbers`);
    }
    tensors.push({ name, shape: [f.length], type: "F32", parts: [], values: Float32Array.from(f as number[]) });
  }
}
