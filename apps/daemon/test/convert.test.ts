// Converting Hugging Face checkpoints, tokenizers and LoRA adapters to GGUF, checked against real
// files: the trained stories260K in HF layout against llama.cpp's own stories260K.gguf, the
// Llama-2 SentencePiece model against llama.cpp's vocabulary GGUF, and the discollama MLX LoRA
// against the tensor hashes Ollama's converter produces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, open, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { readGGUFHeader, ggufNumber, ggufString, type GGUFHeader } from "@corral/shared/gguf/index";
import { fixtures, fixturesDir } from "../../../test/fixtures.ts";
import { convertModel } from "../src/create/convert/convert-model.ts";
import { convertAdapter } from "../src/create/convert/lora.ts";
import { f16BitsToF32, f32ToF16Bits } from "../src/create/convert/dtype.ts";
import { loadStateDict } from "../src/create/convert/pickle.ts";
import { parseSentencePiece } from "../src/create/convert/sentencepiece.ts";
import { readSafetensors } from "../src/create/convert/safetensors.ts";
import { ConvertError } from "../src/create/convert/errors.ts";

const CONVERT = join(fixturesDir, "convert");
const STORIES_HF = join(CONVERT, "stories260K-hf");
const TINY_HF = join(CONVERT, "tiny-random-llama-2-hf");
const DISCOLLAMA = join(CONVERT, "lora-discollama-mlx");

async function dirFiles(dir: string): Promise<Map<string, string>> {
  return new Map((await readdir(dir)).map((n) => [n, join(dir, n)]));
}

async function tensorBytes(path: string, h: GGUFHeader, name: string): Promise<Buffer> {
  const t = h.tensors.find((x) => x.name === name);
  assert.ok(t, `tensor ${name} present`);
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(t.size);
    await fh.read(buf, 0, t.size, h.dataOffset + t.offset);
    return buf;
  } finally {
    await fh.close();
  }
}

function values(buf: Buffer, type: number): Float32Array {
  if (type === 0) return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const u16 = new Uint16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  return Float32Array.from(u16, (h) => f16BitsToF32(h));
}

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), "corral-convert-"));
}

test("F32 → F16 rounds to nearest, ties to even, with overflow, subnormals and NaN", () => {
  assert.equal(f32ToF16Bits(1), 0x3c00);
  assert.equal(f32ToF16Bits(-2), 0xc000);
  assert.equal(f32ToF16Bits(0.1), 0x2e66);
  assert.equal(f32ToF16Bits(65504), 0x7bff);
  assert.equal(f32ToF16Bits(65520), 0x7c00, "rounds up past the largest half to infinity");
  assert.equal(f32ToF16Bits(2 ** -24), 0x0001, "smallest subnormal");
  assert.equal(f32ToF16Bits(2 ** -26), 0x0000, "below half the smallest subnormal");
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00, "tie goes to the even mantissa");
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02, "tie goes to the even mantissa (upwards)");
  assert.equal(f32ToF16Bits(-Infinity), 0xfc00);
  assert.equal(f32ToF16Bits(NaN) & 0x7c00, 0x7c00);
  assert.notEqual(f32ToF16Bits(NaN) & 0x3ff, 0);
  assert.equal(f16BitsToF32(0x3555), 0.333251953125);
});

test("stories260K-hf converts to the tensors, hyper-parameters and vocabulary of llama.cpp's stories260K.gguf", async () => {
  const out = join(await tmp(), "s.gguf");
  const r = await convertModel(await dirFiles(STORIES_HF), out);
  assert.equal(r.arch, "llama");
  const ours = await readGGUFHeader(out);
  const ref = await readGGUFHeader(fixtures.stories260K);

  assert.deepEqual(ours.tensors.map((t) => t.name).sort(), ref.tensors.map((t) => t.name).sort());
  let f16 = 0;
  for (const rt of ref.tensors) {
    const ot = ours.tensors.find((t) => t.name === rt.name)!;
    assert.deepEqual(ot.dims, rt.dims, `${rt.name} dims`);
    const a = values(await tensorBytes(out, ours, rt.name), ot.type);
    const b = values(await tensorBytes(fixtures.stories260K, ref, rt.name), rt.type);
    if (rt.dims.length === 1) {
      // Norms stay F32 and are bit-identical.
      assert.equal(ot.type, 0, `${rt.name} stays F32`);
      assert.deepEqual(a, b, `${rt.name} values`);
      continue;
    }
    // Matrices are F16: each value is the original rounded to the nearest half, which is within
    // half a unit in the last place (2^-11 relative, or 2^-25 absolute in the subnormal range).
    assert.equal(ot.type, 1, `${rt.name} is F16`);
    f16++;
    for (let i = 0; i < a.length; i++) {
      const tol = Math.max(Math.abs(b[i]!) * 2 ** -11, 2 ** -25);
      if (Math.abs(a[i]! - b[i]!) > tol) assert.fail(`${rt.name}[${i}]: ${a[i]} is not ${b[i]} rounded to F16`);
      if (f32ToF16Bits(b[i]!) !== f32ToF16Bits(a[i]!)) assert.fail(`${rt.name}[${i}] is not the nearest F16`);
    }
  }
  assert.equal(f16, 37);

  for (const k of ["embedding_length", "block_count", "feed_forward_length", "attention.head_count", "attention.head_count_kv", "rope.dimension_count"]) {
    assert.equal(ggufNumber(ours, `llama.${k}`), ggufNumber(ref, `llama.${k}`), k);
  }
  // The HF config gives the trained length (512); the llama2.c export wrote a default of 2048.
  assert.equal(ggufNumber(ours, "llama.context_length"), 512);
  assert.equal(ggufNumber(ours, "llama.attention.layer_norm_rms_epsilon"), ggufNumber(ref, "llama.attention.layer_norm_rms_epsilon"));
  assert.equal(ggufNumber(ours, "general.file_type"), 1);
  assert.equal(ggufString(ours, "tokenizer.ggml.model"), "llama");
  for (const k of ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"]) {
    assert.deepEqual(ours.kv.get(k)?.value, ref.kv.get(k)?.value, k);
  }
  for (const k of ["bos", "eos", "unknown"]) assert.equal(ggufNumber(ours, `tokenizer.ggml.${k}_token_id`), ggufNumber(ref, `tokenizer.ggml.${k}_token_id`), k);
  assert.equal(ours.kv.get("tokenizer.ggml.add_bos_token")?.value, true);
  assert.equal(ours.kv.get("tokenizer.ggml.add_eos_token")?.value, false);
});

test("sharded safetensors with an index convert to the same file as the single one", async () => {
  const dir = await tmp();
  const files = await dirFiles(STORIES_HF);
  const single = join(dir, "single.gguf");
  await convertModel(files, single);

  // Split the checkpoint in two shards by tensor, as transformers does.
  const { tensors } = await readSafetensors(join(STORIES_HF, "model.safetensors"), "model.safetensors");
  const src = await readFile(join(STORIES_HF, "model.safetensors"));
  const weightMap: Record<string, string> = {};
  const shards = [tensors.slice(0, 20), tensors.slice(20)];
  const sharded = new Map([...files].filter(([n]) => n !== "model.safetensors"));
  for (const [i, part] of shards.entries()) {
    const name = `model-0000${i + 1}-of-00002.safetensors`;
    const header: Record<string, unknown> = {};
    const datas: Buffer[] = [];
    let off = 0;
    for (const t of part) {
      header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.size] };
      datas.push(src.subarray(t.offset, t.offset + t.size));
      off += t.size;
      weightMap[t.name] = name;
    }
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    await writeFile(join(dir, name), Buffer.concat([len, json, ...datas]));
    sharded.set(name, join(dir, name));
  }
  await writeFile(join(dir, "index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  sharded.set("model.safetensors.index.json", join(dir, "index.json"));
  const out = join(dir, "sharded.gguf");
  await convertModel(sharded, out);
  assert.deepEqual(await readFile(out), await readFile(single));

  // A shard the index names must be there.
  sharded.delete("model-00002-of-00002.safetensors");
  await assert.rejects(convertModel(sharded, join(dir, "x.gguf")), /model\.safetensors\.index\.json lists shard model-00002-of-00002\.safetensors, which was not uploaded/);
});

test("tiny-random-llama-2 (BF16) converts to F16 with its vocabulary fitted to the 3000-row embedding", async () => {
  const out = join(await tmp(), "t.gguf");
  await convertModel(await dirFiles(TINY_HF), out);
  const h = await readGGUFHeader(out);
  assert.equal(h.tensors.length, 21);
  assert.equal(h.tensors.filter((t) => t.type === 1).length, 16);
  assert.equal(h.tensors.filter((t) => t.type === 0).length, 5, "norms stay F32");
  assert.deepEqual(h.tensors.find((t) => t.name === "token_embd.weight")?.dims, [16, 3000]);
  assert.deepEqual(h.tensors.find((t) => t.name === "output.weight")?.dims, [16, 3000]);
  const tokens = h.kv.get("tokenizer.ggml.tokens")?.value as string[];
  assert.equal(tokens.length, 3000);
  assert.equal(tokens[1], "<s>");
  assert.equal(ggufNumber(h, "llama.context_length"), 256);
  assert.equal(ggufNumber(h, "tokenizer.ggml.bos_token_id"), 1);
  assert.equal(ggufNumber(h, "tokenizer.ggml.eos_token_id"), 2);
  assert.equal(h.kv.get("tokenizer.ggml.add_space_prefix")?.value, true);
});

test("tokenizer.model (SentencePiece protobuf) gives the vocabulary of llama.cpp's Llama SPM GGUF", async () => {
  const m = parseSentencePiece(await readFile(join(TINY_HF, "tokenizer.model")));
  const ref = await readGGUFHeader(fixtures.vocabLlamaSpm);
  assert.equal(m.pieces.length, 32000);
  assert.deepEqual(m.pieces.map((p) => p.piece), ref.kv.get("tokenizer.ggml.tokens")?.value);
  assert.deepEqual(m.pieces.map((p) => p.type), ref.kv.get("tokenizer.ggml.token_type")?.value);
  const scores = ref.kv.get("tokenizer.ggml.scores")?.value as number[];
  assert.ok(m.pieces.every((p, i) => Math.fround(p.score) === scores[i]));
  assert.deepEqual([m.modelType, m.unkId, m.bosId, m.eosId, m.padId, m.addDummyPrefix], [2, 0, 1, 2, -1, true]);
  assert.throws(() => parseSentencePiece(new Uint8Array([0x0a, 0x05, 0x0a])), /not a valid SentencePiece model: length 5 runs past the end/);
});

test("a BPE tokenizer.json of the GPT-2 kind gives merges, a pre-tokenizer, special tokens and the chat template", async () => {
  const dir = await tmp();
  const files = await dirFiles(STORIES_HF);
  const vocab: Record<string, number> = {};
  ["h", "e", "l", "o", "Ġ", "he", "ll", "hell", "hello"].forEach((t, i) => (vocab[t] = i));
  const llama3Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const tj = {
    added_tokens: [
      { id: 500, content: "<|begin_of_text|>", special: true },
      { id: 501, content: "<|eot_id|>", special: true },
      { id: 502, content: "<tool>", special: false },
    ],
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: llama3Regex }, behavior: "Isolated", invert: false }, { type: "ByteLevel", add_prefix_space: false, use_regex: false }] },
    post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }] },
    model: { type: "BPE", byte_fallback: false, vocab, merges: [["h", "e"], ["l", "l"], ["he", "ll"], "hell o"] },
  };
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify(tj));
  await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<|begin_of_text|>", eos_token: { content: "<|eot_id|>" }, chat_template: "{% for m in messages %}{{ m.content }}{% endfor %}" }));
  files.set("tokenizer.json", join(dir, "tokenizer.json"));
  files.set("tokenizer_config.json", join(dir, "tokenizer_config.json"));
  files.delete("special_tokens_map.json");
  const out = join(dir, "o.gguf");
  await convertModel(files, out);
  const h = await readGGUFHeader(out);
  assert.equal(ggufString(h, "tokenizer.ggml.model"), "gpt2");
  assert.equal(ggufString(h, "tokenizer.ggml.pre"), "llama-bpe");
  assert.deepEqual(h.kv.get("tokenizer.ggml.merges")?.value, ["h e", "l l", "he ll", "hell o"]);
  const tokens = h.kv.get("tokenizer.ggml.tokens")?.value as string[];
  const types = h.kv.get("tokenizer.ggml.token_type")?.value as number[];
  assert.equal(tokens.length, 512, "fitted to the embedding");
  assert.equal(tokens[8], "hello");
  assert.equal(tokens[9], "[PAD9]");
  assert.deepEqual([types[8], types[9], types[500], types[502]], [1, 5, 3, 4]);
  assert.equal(ggufNumber(h, "tokenizer.ggml.bos_token_id"), 500);
  assert.equal(ggufNumber(h, "tokenizer.ggml.eos_token_id"), 501);
  assert.equal(h.kv.get("tokenizer.ggml.add_bos_token")?.value, true);
  assert.equal(h.kv.has("tokenizer.ggml.scores"), false);
  assert.equal(ggufString(h, "tokenizer.chat_template"), "{% for m in messages %}{{ m.content }}{% endfor %}");
});

test("a Unigram tokenizer.json keeps its scores", async () => {
  const dir = await tmp();
  const files = await dirFiles(STORIES_HF);
  const vocab = [["<unk>", 0], ["<s>", 0], ["</s>", 0], ["▁a", -1.5], ["b", -2.25]];
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify({ added_tokens: [{ id: 1, content: "<s>", special: true }, { id: 2, content: "</s>", special: true }], normalizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "always" }, model: { type: "Unigram", unk_id: 0, vocab } }));
  files.set("tokenizer.json", join(dir, "tokenizer.json"));
  const out = join(dir, "o.gguf");
  await convertModel(files, out);
  const h = await readGGUFHeader(out);
  assert.equal(ggufString(h, "tokenizer.ggml.model"), "llama");
  assert.deepEqual((h.kv.get("tokenizer.ggml.scores")?.value as number[]).slice(0, 5), [0, 0, 0, -1.5, -2.25]);
  assert.deepEqual((h.kv.get("tokenizer.ggml.token_type")?.value as number[]).slice(0, 6), [2, 3, 3, 1, 1, 5]);
  assert.equal(h.kv.get("tokenizer.ggml.add_space_prefix")?.value, true);
});

test("unsupported architectures and broken inputs are refused with errors that name them", async () => {
  const dir = await tmp();
  const files = await dirFiles(STORIES_HF);
  const config = JSON.parse(await readFile(join(STORIES_HF, "config.json"), "utf8")) as Record<string, unknown>;
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, architectures: ["GPT2LMHeadModel"] }));
  await assert.rejects(
    convertModel(new Map([...files, ["config.json", join(dir, "config.json")]]), join(dir, "o.gguf")),
    (e: Error) => e instanceof ConvertError && /unsupported architecture "GPT2LMHeadModel"; supported: LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, Phi3ForCausalLM, Qwen2ForCausalLM/.test(e.message),
  );
  await writeFile(join(dir, "config2.json"), JSON.stringify({ ...config, num_attention_heads: "eight" }));
  await assert.rejects(convertModel(new Map([...files, ["config.json", join(dir, "config2.json")]]), join(dir, "o.gguf")), /config\.json: "num_attention_heads" must be a positive integer, got "eight"/);
  await writeFile(join(dir, "bad.safetensors"), Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x7b]));
  await assert.rejects(convertModel(new Map([...files, ["model.safetensors", join(dir, "bad.safetensors")]]), join(dir, "o.gguf")), /model\.safetensors: not a valid safetensors file: header length 4294967295 exceeds the file/);
  const noTok = new Map([...files].filter(([n]) => n !== "tokenizer.json"));
  await assert.rejects(convertModel(noTok, join(dir, "o.gguf")), /no tokenizer: expected tokenizer\.json or tokenizer\.model/);
  assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith(".gguf") || n.includes("partial")), [], "nothing is left behind");
});

/** A pickle stream from opcodes given as strings (latin1) and numbers. */
function pickle(...parts: Array<string | number[]>): Uint8Array {
  return Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));
}

test("the pickle reader refuses globals and opcodes a state dict does not need, naming them", () => {
  // The classic payload: os.system("echo hi") through GLOBAL + REDUCE.
  const evil = pickle([0x80, 2], "cos\nsystem\n", "X", [7, 0, 0, 0], "echo hi", [0x85], "R.");
  assert.throws(() => loadStateDict(evil, "pytorch_model.bin"), /pytorch_model\.bin: pickle byte 2: refusing pickle global "os\.system": only the names a state dict needs are allowed \(collections\.OrderedDict, torch\._utils\._rebuild_tensor_v2/);
  const viaStack = pickle([0x80, 4], [0x8c, 8], "builtins", [0x8c, 4], "eval", [0x93], ".");
  assert.throws(() => loadStateDict(viaStack, "x.bin"), /refusing pickle global "builtins\.eval"/);
  const inst = pickle([0x80, 2], "(ios\nsystem\n.");
  assert.throws(() => loadStateDict(inst, "x.bin"), /pickle byte 3: refusing pickle opcode INST \(0x69\): a state dict does not need it/);
  const newobj = pickle([0x80, 2], "ccollections\nOrderedDict\n)", [0x81], ".");
  assert.throws(() => loadStateDict(newobj, "x.bin"), /refusing pickle opcode NEWOBJ \(0x81\)/);
  assert.throws(() => loadStateDict(pickle([0x80, 2], "}."), "x.bin"), /x\.bin: the pickle holds no tensors; expected a state dict/);
  assert.throws(() => loadStateDict(pickle([0x80, 2], "X", [9, 0, 0, 0], "ab"), "x.bin"), /x\.bin: pickle byte 2: truncated/);
});

test("the discollama MLX LoRA converts to the GGUF LoRA llama.cpp expects", async () => {
  const dir = await tmp();
  const files = new Map([
    ["adapters.safetensors", join(DISCOLLAMA, "adapters.safetensors")],
    ["adapter_config.json", join(DISCOLLAMA, "adapter_config.json")],
  ]);
  const out = join(dir, "lora.gguf");
  // The base is Meta-Llama-3-8B-Instruct: 32 heads, 8 KV heads.
  await convertAdapter(files, { arch: "llama", headCount: 32, headCountKV: 8 }, out);
  const h = await readGGUFHeader(out);
  assert.equal(ggufString(h, "general.type"), "adapter");
  assert.equal(ggufString(h, "adapter.type"), "lora");
  assert.equal(ggufNumber(h, "adapter.lora.alpha"), 16);
  assert.equal(ggufString(h, "general.architecture"), "llama");
  assert.equal(ggufNumber(h, "llama.attention.head_count"), 32);
  assert.equal(ggufNumber(h, "llama.attention.head_count_kv"), 8);
  const dims = Object.fromEntries(h.tensors.map((t) => [t.name, t.dims]));
  assert.deepEqual(dims, {
    "blk.30.attn_q.weight.lora_a": [4096, 8],
    "blk.30.attn_q.weight.lora_b": [8, 4096],
    "blk.30.attn_v.weight.lora_a": [4096, 8],
    "blk.30.attn_v.weight.lora_b": [8, 1024],
    "blk.31.attn_q.weight.lora_a": [4096, 8],
    "blk.31.attn_q.weight.lora_b": [8, 4096],
    "blk.31.attn_v.weight.lora_a": [4096, 8],
    "blk.31.attn_v.weight.lora_b": [8, 1024],
  });
  assert.ok(h.tensors.every((t) => t.type === 1), "F16");

  // v is not rotary: its tensors are byte for byte what Ollama's converter writes.
  const expected = JSON.parse(await readFile(join(DISCOLLAMA, "discollama.ollama-test-hashes.json"), "utf8")) as Record<string, string>;
  for (const name of ["blk.30.attn_v.weight.lora_a", "blk.30.attn_v.weight.lora_b", "blk.31.attn_v.weight.lora_a", "blk.31.attn_v.weight.lora_b"]) {
    assert.equal(createHash("sha256").update(await tensorBytes(out, h, name)).digest("hex"), expected[name], name);
  }
  // For q, the rotary permutation goes on lora_b (output rows), so that B'·A' is the permuted
  // ΔW = P·(B·A) of the MLX product (x·A·B)ᵀ. Checked on sampled entries against the source.
  const src = await readSafetensors(join(DISCOLLAMA, "adapters.safetensors"), "adapters.safetensors");
  const raw = await readFile(join(DISCOLLAMA, "adapters.safetensors"));
  const f32 = (name: string): Float32Array => {
    const t = src.tensors.find((x) => x.name === name)!;
    return new Float32Array(raw.buffer.slice(raw.byteOffset + t.offset, raw.byteOffset + t.offset + t.size));
  };
  const A = f32("model.layers.30.self_attn.q_proj.lora_a"); // [4096 in, 8]
  const B = f32("model.layers.30.self_attn.q_proj.lora_b"); // [8, 4096 out]
  const a = values(await tensorBytes(out, h, "blk.30.attn_q.weight.lora_a"), 1); // [8][4096]
  const b = values(await tensorBytes(out, h, "blk.30.attn_q.weight.lora_b"), 1); // [4096][8]
  const perm = (row: number): number => {
    // Output row 2i+j of a 128-row head comes from input row j·64+i.
    const head = Math.floor(row / 128);
    const r = row % 128;
    return head * 128 + (r % 2) * 64 + Math.floor(r / 2);
  };
  let maxErr = 0;
  for (const [o, i] of [[0, 0], [1, 5], [127, 4095], [300, 17], [4095, 2048], [64, 1]] as const) {
    let want = 0;
    let got = 0;
    for (let k = 0; k < 8; k++) {
      want += B[k * 4096 + perm(o)]! * A[i * 8 + k]!;
      got += b[o * 8 + k]! * a[k * 4096 + i]!;
    }
    maxErr = Math.max(maxErr, Math.abs(want - got) / Math.max(Math.abs(want), 1e-6));
  }
  assert.ok(maxErr < 5e-3, `B'A' matches P(BA) within F16 rounding (max relative error ${maxErr})`);

  // A base that lacks the adapted tensor is refused.
  await assert.rejects(
    convertAdapter(files, { arch: "llama", headCount: 32, headCountKV: 8, tensorDims: new Map([["blk.0.attn_q.weight", [4096, 4096]]]) }, join(dir, "x.gguf")),
    /adapters\.safetensors: tensor "model\.layers\.30\.self_attn\.q_proj\.lora_a" adapts blk\.30\.attn_q\.weight, which the base model does not have/,
  );
  const noConfig = new Map([["adapters.safetensors", join(DISCOLLAMA, "adapters.safetensors")]]);
  await assert.rejects(convertAdapter(noConfig, { arch: "llama" }, join(dir, "y.gguf")), /adapter_config\.json is missing/);
  await copyFile(join(DISCOLLAMA, "adapter_config.json"), join(dir, "cfg.json"));
});

/** A tiny random checkpoint of `arch` (hidden 64, 4 heads, 2 KV heads, 2 layers, vocab 512). */
async function tinyCheckpoint(dir: string, arch: string, extraConfig: Record<string, unknown> = {}): Promise<Map<string, string>> {
  const H = 64, KV = 32, FF = 128, V = 512, E = 4;
  const shapes: Array<[string, number[]]> = [["model.embed_tokens.weight", [V, H]], ["model.norm.weight", [H]]];
  const gemma = arch.startsWith("Gemma");
  if (!gemma && arch !== "Qwen2ForCausalLM") shapes.push(["lm_head.weight", [V, H]]);
  for (let l = 0; l < 2; l++) {
    const p = `model.layers.${l}.`;
    shapes.push([`${p}input_layernorm.weight`, [H]], [`${p}post_attention_layernorm.weight`, [H]], [`${p}self_attn.o_proj.weight`, [H, H]]);
    if (arch === "Phi3ForCausalLM") {
      shapes.push([`${p}self_attn.qkv_proj.weight`, [H + 2 * KV, H]], [`${p}mlp.gate_up_proj.weight`, [2 * FF, H]], [`${p}mlp.down_proj.weight`, [H, FF]]);
      continue;
    }
    shapes.push([`${p}self_attn.q_proj.weight`, [H, H]], [`${p}self_attn.k_proj.weight`, [KV, H]], [`${p}self_attn.v_proj.weight`, [KV, H]]);
    if (arch === "Qwen2ForCausalLM") shapes.push([`${p}self_attn.q_proj.bias`, [H]], [`${p}self_attn.k_proj.bias`, [KV]], [`${p}self_attn.v_proj.bias`, [KV]]);
    if (arch === "Gemma2ForCausalLM") shapes.push([`${p}pre_feedforward_layernorm.weight`, [H]], [`${p}post_feedforward_layernorm.weight`, [H]]);
    if (arch === "MixtralForCausalLM") {
      shapes.push([`${p}block_sparse_moe.gate.weight`, [E, H]]);
      for (let e = 0; e < E; e++) {
        shapes.push([`${p}block_sparse_moe.experts.${e}.w1.weight`, [FF, H]], [`${p}block_sparse_moe.experts.${e}.w2.weight`, [H, FF]], [`${p}block_sparse_moe.experts.${e}.w3.weight`, [FF, H]]);
      }
    } else {
      shapes.push([`${p}mlp.gate_proj.weight`, [FF, H]], [`${p}mlp.up_proj.weight`, [FF, H]], [`${p}mlp.down_proj.weight`, [H, FF]]);
    }
  }
  let seed = 1;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.2;
  const header: Record<string, unknown> = {};
  const datas: Buffer[] = [];
  let off = 0;
  for (const [name, shape] of shapes) {
    const v = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (shape.length === 1 ? 1 : rand()));
    // BF16: the top half of each F32.
    const bf = Uint16Array.from(new Uint32Array(v.buffer), (u) => u >>> 16);
    const b = Buffer.from(bf.buffer);
    header[name] = { dtype: "BF16", shape, data_offsets: [off, off + b.length] };
    datas.push(b);
    off += b.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  await writeFile(join(dir, "model.safetensors"), Buffer.concat([len, json, ...datas]));
  await writeFile(join(dir, "config.json"), JSON.stringify({
    architectures: [arch], hidden_size: H, intermediate_size: FF, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, head_dim: 16, vocab_size: V, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 10000,
    ...(arch === "MixtralForCausalLM" ? { num_local_experts: E, num_experts_per_tok: 2 } : {}),
    ...(arch === "Gemma2ForCausalLM" ? { attn_logit_softcapping: 50, final_logit_softcapping: 30, sliding_window: 128 } : {}),
    ...(arch === "Qwen2ForCausalLM" ? { tie_word_embeddings: true } : {}),
    ...extraConfig,
  }));
  const files = new Map([["model.safetensors", join(dir, "model.safetensors")], ["config.json", join(dir, "config.json")]]);
  files.set("tokenizer.json", join(STORIES_HF, "tokenizer.json"));
  files.set("tokenizer_config.json", join(STORIES_HF, "tokenizer_config.json"));
  return files;
}

test("every supported architecture converts to a GGUF that llama.cpp loads and runs", async () => {
  const { llamaEngine } = await import("../src/runner/llama.ts");
  const llama = await llamaEngine();
  const expected: Record<string, [string, string[]]> = {
    LlamaForCausalLM: ["llama", ["blk.0.attn_q.weight", "blk.0.ffn_gate.weight", "output.weight"]],
    MistralForCausalLM: ["llama", ["blk.1.attn_k.weight", "output.weight"]],
    MixtralForCausalLM: ["llama", ["blk.0.ffn_gate_inp.weight", "blk.0.ffn_gate_exps.weight", "blk.1.ffn_down_exps.weight", "blk.1.ffn_up_exps.weight"]],
    GemmaForCausalLM: ["gemma", ["blk.0.ffn_norm.weight", "output_norm.weight"]],
    Gemma2ForCausalLM: ["gemma2", ["blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight", "blk.0.ffn_norm.weight"]],
    Phi3ForCausalLM: ["phi3", ["blk.0.attn_qkv.weight", "blk.0.ffn_up.weight", "output.weight"]],
    Qwen2ForCausalLM: ["qwen2", ["blk.0.attn_q.bias", "blk.0.attn_v.bias"]],
  };
  for (const [arch, [ggufArch, names]] of Object.entries(expected)) {
    const dir = await tmp();
    const out = join(dir, "m.gguf");
    await convertModel(await tinyCheckpoint(dir, arch), out);
    const h = await readGGUFHeader(out);
    assert.equal(ggufString(h, "general.architecture"), ggufArch, arch);
    const have = new Set(h.tensors.map((t) => t.name));
    for (const n of names) assert.ok(have.has(n), `${arch}: ${n}`);
    if (arch === "MixtralForCausalLM") {
      assert.deepEqual(h.tensors.find((t) => t.name === "blk.0.ffn_gate_exps.weight")?.dims, [64, 128, 4]);
      assert.equal(ggufNumber(h, "llama.expert_count"), 4);
      assert.equal(ggufNumber(h, "llama.expert_used_count"), 2);
    }
    if (arch.startsWith("Gemma")) {
      assert.ok(!have.has("output.weight"), "Gemma's output is the embedding");
      const norm = values(await tensorBytes(out, h, "output_norm.weight"), 0);
      assert.equal(norm[0], 2, "Gemma norms are stored minus one");
    }
    if (arch === "Qwen2ForCausalLM") assert.ok(!have.has("output.weight"), "tied embeddings");
    const model = await llama.loadModel({ modelPath: out, gpuLayers: 0 });
    try {
      const context = await model.createContext({ contextSize: 32, threads: 1 });
      const seq = context.getSequence();
      const tokens: number[] = [];
      for await (const t of seq.evaluate([1, 300, 301] as never[], { temperature: 0 })) {
        tokens.push(t as number);
        if (tokens.length === 3) break;
      }
      assert.equal(tokens.length, 3, arch);
      await context.dispose();
    } finally {
      await model.dispose();
    }
  }
});
