// Writes a llama-architecture GGUF with random weights of a chosen size, for benchmarks that
// need realistic tensor shapes but no particular output. Tensors are streamed, so a model of
// several gigabytes is written in constant memory. The vocabulary and tokenizer metadata
// are taken from stories260K, so any prompt tokenizes; weights come from a seeded generator so
// the file is the same on every run.
import { readGGUFHeader, writeGGUF, GGUFValueType, type GGUFKV, type GGUFTensorProducer } from "@corral/shared/gguf/index";
import { fixtures } from "../../test/fixtures.ts";

export interface RandomLlamaOptions {
  embd: number;
  layers: number;
  ff: number;
  heads: number;
  kvHeads: number;
  /** ggml type of the 2-D weights: 0 = F32, 1 = F16. */
  type: 0 | 1;
  /**
   * Zero the output row of the end-of-text token: its logit is then 0 while the largest of the
   * others is positive, so greedy decoding never ends early and a timing run makes every token
   * it asks for.
   */
  neverEnd?: boolean;
}

// One scratch word for the float32 → bits step: allocating per value made writing a 500 MB
// model take minutes.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f16(x: number): number {
  // Only for values well inside the normal range, which is all this generator makes.
  scratchF32[0] = x;
  const u = scratchU32[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  return sign | (exp << 10) | ((u >>> 13) & 0x3ff);
}

const CHUNK_ELEMENTS = 1 << 20;

/**
 * A tensor's bytes, made piece by piece from a seeded xorshift generator: the same seed gives
 * the same bytes, and a tensor of any size needs only one chunk in memory.
 */
function randomTensor(elements: number, type: 0 | 1, seed: number, scale: number): GGUFTensorProducer {
  return {
    size: elements * (type === 0 ? 4 : 2),
    *chunks() {
      let s = seed >>> 0 || 1;
      const next = (): number => {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        return ((s >>> 0) / 0xffffffff - 0.5) * 2 * scale;
      };
      for (let done = 0; done < elements; done += CHUNK_ELEMENTS) {
        const n = Math.min(CHUNK_ELEMENTS, elements - done);
        if (type === 0) {
          const a = new Float32Array(n);
          for (let i = 0; i < n; i++) a[i] = next();
          yield new Uint8Array(a.buffer);
        } else {
          const a = new Uint16Array(n);
          for (let i = 0; i < n; i++) a[i] = f16(next());
          yield new Uint8Array(a.buffer);
        }
      }
    },
  };
}

/** `source` with bytes [from, to) set to zero (a zero F16 or F32 is all zero bits). */
function zeroBytes(source: GGUFTensorProducer, from: number, to: number): GGUFTensorProducer {
  return {
    size: source.size,
    async *chunks() {
      let at = 0;
      for await (const chunk of source.chunks()) {
        const start = Math.max(from - at, 0);
        const end = Math.min(to - at, chunk.length);
        if (start < end) chunk.fill(0, start, end);
        at += chunk.length;
        yield chunk;
      }
    },
  };
}

export async function writeRandomLlama(out: string, o: RandomLlamaOptions): Promise<void> {
  const src = await readGGUFHeader(fixtures.stories260K);
  const vocab = (src.kv.get("tokenizer.ggml.tokens")!.value as unknown[]).length;
  const kv: GGUFKV[] = [...src.kv.values()].filter((e) => e.key.startsWith("tokenizer.") || e.key === "general.architecture");
  const u32 = (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.UINT32, value });
  kv.push(
    { key: "general.name", type: GGUFValueType.STRING, value: "random-llama" },
    u32("general.file_type", o.type),
    u32("llama.context_length", 4096),
    u32("llama.embedding_length", o.embd),
    u32("llama.feed_forward_length", o.ff),
    u32("llama.attention.head_count", o.heads),
    u32("llama.attention.head_count_kv", o.kvHeads),
    u32("llama.block_count", o.layers),
    u32("llama.rope.dimension_count", o.embd / o.heads),
    { key: "llama.attention.layer_norm_rms_epsilon", type: GGUFValueType.FLOAT32, value: 1e-5 },
  );
  const kvDim = (o.embd / o.heads) * o.kvHeads;
  const tensors: Array<{ name: string; dims: number[]; type: number; source: GGUFTensorProducer }> = [];
  let seed = 1;
  const add = (name: string, dims: number[], type: 0 | 1): void => {
    const n = dims.reduce((a, b) => a * b, 1);
    tensors.push({ name, dims, type, source: randomTensor(n, type, seed++, dims.length === 1 ? 1 : 0.05) });
  };
  add("token_embd.weight", [o.embd, vocab], o.type);
  add("output_norm.weight", [o.embd], 0);
  add("output.weight", [o.embd, vocab], o.type);
  const eos = src.kv.get("tokenizer.ggml.eos_token_id")?.value;
  if (o.neverEnd && typeof eos === "number") {
    const output = tensors[tensors.length - 1]!;
    const row = o.embd * (o.type === 0 ? 4 : 2);
    output.source = zeroBytes(output.source, eos * row, (eos + 1) * row);
  }
  for (let i = 0; i < o.layers; i++) {
    add(`blk.${i}.attn_norm.weight`, [o.embd], 0);
    add(`blk.${i}.attn_q.weight`, [o.embd, o.embd], o.type);
    add(`blk.${i}.attn_k.weight`, [o.embd, kvDim], o.type);
    add(`blk.${i}.attn_v.weight`, [o.embd, kvDim], o.type);
    add(`blk.${i}.attn_output.weight`, [o.embd, o.embd], o.type);
    add(`blk.${i}.ffn_norm.weight`, [o.embd], 0);
    add(`blk.${i}.ffn_gate.weight`, [o.embd, o.ff], o.type);
    add(`blk.${i}.ffn_up.weight`, [o.embd, o.ff], o.type);
    add(`blk.${i}.ffn_down.weight`, [o.ff, o.embd], o.type);
  }
  await writeGGUF(out, { kv, tensors });
}
