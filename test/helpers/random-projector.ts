// Writes a tiny vision projector GGUF with seeded random weights, of the LLaVA kind libmtmd reads
// as projector type "mlp": a CLIP-style encoder (patch convolution, position embeddings, a couple
// of pre-norm transformer blocks) then a two-layer MLP into the text model's embedding size. Its
// keys and tensor names are those llama.cpp's clip loader requires for that type; with it, a test
// runs the whole image path (decode, resize, encode, evaluate) in well under a second, and the
// same image always gives the same embeddings.
import { writeGGUF, ggufArray, GGUFValueType, type GGUFKV } from "@corral/shared/gguf/index";

export interface RandomProjectorOptions {
  /** Embedding size of the text model the projector feeds (stories260K: 64). */
  textEmbd: number;
  /** Square input size in pixels; every image is resized to it. */
  imageSize?: number;
  /** Side of a patch; (imageSize / patchSize)² tokens per image. */
  patchSize?: number;
  /** Width of the encoder. */
  embd?: number;
  /** Encoder blocks; LLaVA reads the output of the second to last, so at least 2. */
  blocks?: number;
  seed?: number;
}

const F32 = 0;

function randomF32(elements: number, seed: number, scale: number): Uint8Array {
  let s = seed >>> 0 || 1;
  const a = new Float32Array(elements);
  for (let i = 0; i < elements; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 0xffffffff - 0.5) * 2 * scale;
  }
  return new Uint8Array(a.buffer);
}

function constF32(elements: number, value: number): Uint8Array {
  return new Uint8Array(new Float32Array(elements).fill(value).buffer);
}

/** Writes the projector to `out`; returns the number of tokens one image becomes. */
export async function writeRandomProjector(out: string, o: RandomProjectorOptions): Promise<number> {
  const imageSize = o.imageSize ?? 32;
  const patch = o.patchSize ?? 8;
  const embd = o.embd ?? 32;
  const blocks = o.blocks ?? 2;
  const ff = embd * 2;
  const hidden = o.textEmbd * 2;
  const patches = (imageSize / patch) ** 2;
  let seed = o.seed ?? 7;

  const u32 = (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.UINT32, value });
  const f32 = (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.FLOAT32, value });
  const f32s = (key: string, value: number[]): GGUFKV => ({
    key,
    type: GGUFValueType.ARRAY,
    arrayType: GGUFValueType.FLOAT32,
    value: ggufArray(value, GGUFValueType.FLOAT32),
  });
  const kv: GGUFKV[] = [
    { key: "general.architecture", type: GGUFValueType.STRING, value: "clip" },
    { key: "general.name", type: GGUFValueType.STRING, value: "random-projector" },
    u32("general.file_type", 0),
    { key: "clip.projector_type", type: GGUFValueType.STRING, value: "mlp" },
    { key: "clip.has_vision_encoder", type: GGUFValueType.BOOL, value: true },
    { key: "clip.use_gelu", type: GGUFValueType.BOOL, value: true },
    u32("clip.vision.image_size", imageSize),
    u32("clip.vision.patch_size", patch),
    u32("clip.vision.embedding_length", embd),
    u32("clip.vision.feed_forward_length", ff),
    u32("clip.vision.block_count", blocks),
    u32("clip.vision.projection_dim", o.textEmbd),
    u32("clip.vision.attention.head_count", 4),
    f32("clip.vision.attention.layer_norm_epsilon", 1e-6),
    f32s("clip.vision.image_mean", [0.5, 0.5, 0.5]),
    f32s("clip.vision.image_std", [0.5, 0.5, 0.5]),
  ];

  const tensors: Array<{ name: string; dims: number[]; type: number; source: Uint8Array }> = [];
  const n = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);
  const rand = (name: string, dims: number[], scale = 0.2): void => {
    tensors.push({ name, dims, type: F32, source: randomF32(n(dims), seed++, scale) });
  };
  const ones = (name: string, dims: number[]): void => {
    tensors.push({ name, dims, type: F32, source: constF32(n(dims), 1) });
  };
  const zeros = (name: string, dims: number[]): void => {
    tensors.push({ name, dims, type: F32, source: constF32(n(dims), 0) });
  };

  // ggml order: the first dimension is the one that varies fastest (a matrix is [in, out]).
  rand("v.patch_embd.weight", [patch, patch, 3, embd]);
  zeros("v.patch_embd.bias", [embd]);
  rand("v.position_embd.weight", [embd, patches]);
  ones("v.pre_ln.weight", [embd]);
  zeros("v.pre_ln.bias", [embd]);
  for (let i = 0; i < blocks; i++) {
    for (const t of ["attn_q", "attn_k", "attn_v", "attn_out"]) {
      rand(`v.blk.${i}.${t}.weight`, [embd, embd]);
      zeros(`v.blk.${i}.${t}.bias`, [embd]);
    }
    ones(`v.blk.${i}.ln1.weight`, [embd]);
    zeros(`v.blk.${i}.ln1.bias`, [embd]);
    ones(`v.blk.${i}.ln2.weight`, [embd]);
    zeros(`v.blk.${i}.ln2.bias`, [embd]);
    rand(`v.blk.${i}.ffn_up.weight`, [embd, ff]);
    zeros(`v.blk.${i}.ffn_up.bias`, [ff]);
    rand(`v.blk.${i}.ffn_down.weight`, [ff, embd]);
    zeros(`v.blk.${i}.ffn_down.bias`, [embd]);
  }
  // The projector's output is scaled to the size of stories260K's token embeddings, so the image
  // moves the text model's answer without drowning it.
  rand("mm.0.weight", [embd, hidden], 0.3);
  zeros("mm.0.bias", [hidden]);
  rand("mm.2.weight", [hidden, o.textEmbd], 0.3);
  zeros("mm.2.bias", [o.textEmbd]);

  await writeGGUF(out, { kv, tensors });
  return patches;
}
