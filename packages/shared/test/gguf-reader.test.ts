import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixtures } from "../../../test/fixtures.ts";
import { bytesReadByProcess } from "../../../test/helpers/bytes-read.ts";
import {
  GGUFError,
  GGUFValueType,
  architecture,
  archKey,
  arrayItemType,
  fileTypeId,
  fileTypeName,
  ggmlTypeName,
  ggufBool,
  ggufNumber,
  ggufString,
  kvToJSON,
  parameterCount,
  parseGGUFHeader,
  readGGUFHeader,
  tensorByteSize,
  validateGGUFLayout,
  type GGUFHeader,
} from "@corral/shared/gguf/index";

/**
 * A tiny GGUF byte builder written independently of the module under test, so that the reader is
 * checked against the format rather than against its own writer.
 */
class Bytes {
  private out: number[] = [];
  constructor(
    readonly le = true,
    readonly version = 3,
  ) {}
  private num(n: number, setter: (dv: DataView) => void): this {
    const dv = new DataView(new ArrayBuffer(n));
    setter(dv);
    for (let i = 0; i < n; i++) this.out.push(dv.getUint8(i));
    return this;
  }
  raw(...b: number[]): this {
    this.out.push(...b);
    return this;
  }
  ascii(s: string): this {
    for (const ch of s) this.out.push(ch.charCodeAt(0));
    return this;
  }
  u8(v: number): this { return this.num(1, (d) => d.setUint8(0, v)); }
  i8(v: number): this { return this.num(1, (d) => d.setInt8(0, v)); }
  u16(v: number): this { return this.num(2, (d) => d.setUint16(0, v, this.le)); }
  i16(v: number): this { return this.num(2, (d) => d.setInt16(0, v, this.le)); }
  u32(v: number): this { return this.num(4, (d) => d.setUint32(0, v, this.le)); }
  i32(v: number): this { return this.num(4, (d) => d.setInt32(0, v, this.le)); }
  f32(v: number): this { return this.num(4, (d) => d.setFloat32(0, v, this.le)); }
  f64(v: number): this { return this.num(8, (d) => d.setFloat64(0, v, this.le)); }
  u64(v: bigint | number): this { return this.num(8, (d) => d.setBigUint64(0, BigInt(v), this.le)); }
  i64(v: bigint | number): this { return this.num(8, (d) => d.setBigInt64(0, BigInt(v), this.le)); }
  /** A count or length: u32 in v1, u64 later. */
  size(v: bigint | number): this { return this.version === 1 ? this.u32(Number(v)) : this.u64(v); }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.size(b.length);
    this.out.push(...b);
    return this;
  }
  /** Magic, version and counts. */
  head(nTensors: bigint | number, nKV: bigint | number, magic = "GGUF"): this {
    this.ascii(magic).u32(this.version);
    return this.size(nTensors).size(nKV);
  }
  kvString(key: string, value: string): this { return this.str(key).u32(8).str(value); }
  kvU32(key: string, value: number): this { return this.str(key).u32(4).u32(value); }
  tensor(name: string, dims: number[], type: number, offset: number): this {
    this.str(name).u32(dims.length);
    for (const d of dims) this.size(d);
    return this.u32(type).u64(offset);
  }
  get length(): number { return this.out.length; }
  bytes(): Uint8Array { return Uint8Array.from(this.out); }
}

/**
 * Awaits a refusal. That refusing huge claimed counts and lengths does no work in proportion to
 * them is counted, not timed, in fuzz-gguf.test.ts ("refuses huge counts, lengths and nesting").
 */
async function rejectsGGUF(p: Promise<unknown>, pattern: RegExp): Promise<GGUFError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof GGUFError, `expected a GGUFError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

describe("real GGUF files", () => {
  test("stories260K: v3, 19 KV, 48 F32 tensors, llama", async () => {
    const h = await readGGUFHeader(fixtures.stories260K);
    assert.equal(h.version, 3);
    assert.equal(h.littleEndian, true);
    assert.equal(h.kv.size, 19);
    assert.equal(h.tensors.length, 48);
    assert.ok(h.tensors.every((t) => t.type === 0 && ggmlTypeName(t.type) === "F32"));
    assert.equal(architecture(h), "llama");
    assert.equal(ggufString(h, "general.name"), "llama");
    assert.equal(ggufNumber(h, "llama.context_length"), 2048);
    assert.equal(archKey(h, "context_length"), 2048);
    assert.equal(archKey(h, "embedding_length"), 64);
    assert.equal(archKey(h, "block_count"), 5);
    assert.equal(archKey(h, "feed_forward_length"), 172);
    assert.equal(archKey(h, "attention.head_count"), 8);
    assert.equal(archKey(h, "attention.head_count_kv"), 4);
    assert.equal(archKey(h, "rope.dimension_count"), 8);
    assert.equal(h.kv.get("llama.attention.layer_norm_rms_epsilon")?.type, GGUFValueType.FLOAT32);
    assert.equal(archKey(h, "attention.layer_norm_rms_epsilon"), Math.fround(1e-5));
    // The misspelt key and the all-ones padding id are part of the real file.
    assert.equal(ggufNumber(h, "tokenizer.ggml.seperator_token_id"), 4294967295);
    assert.equal(h.kv.get("tokenizer.ggml.padding_token_id")?.type, GGUFValueType.UINT32);
    assert.equal(ggufNumber(h, "general.file_type"), undefined);
    assert.equal(fileTypeName(ggufNumber(h, "general.file_type")), "unknown");

    const tokens = h.kv.get("tokenizer.ggml.tokens");
    assert.equal(tokens?.type, GGUFValueType.ARRAY);
    assert.equal(tokens?.arrayType, GGUFValueType.STRING);
    assert.ok(Array.isArray(tokens?.value));
    const list = tokens.value as string[];
    assert.equal(list.length, 512);
    assert.deepEqual(list.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
    assert.equal(arrayItemType(list), GGUFValueType.STRING);
    assert.equal(h.kv.get("tokenizer.ggml.scores")?.arrayType, GGUFValueType.FLOAT32);
    assert.equal(h.kv.get("tokenizer.ggml.token_type")?.arrayType, GGUFValueType.INT32);
    assert.deepEqual((h.kv.get("tokenizer.ggml.token_type")?.value as number[]).slice(0, 5), [2, 3, 3, 6, 6]);

    assert.equal(h.alignment, 32);
    assert.equal(h.headerSize, 14152);
    assert.equal(h.dataOffset, 14176);
    assert.deepEqual(h.tensors[0], { name: "token_embd.weight", dims: [64, 512], type: 0, offset: 0, size: 131072 });
    assert.deepEqual(h.tensors[1], { name: "output_norm.weight", dims: [64], type: 0, offset: 131072, size: 256 });
    const last = h.tensors[47]!;
    assert.equal(last.name, "blk.4.ffn_norm.weight");
    assert.equal(h.dataOffset + last.offset + last.size, 1185376);
    assert.equal(parameterCount(h), 292800);
  });

  test("llama-2-tiny-random: 12 tensors (9 F16, 3 F32), file_type 1", async () => {
    const h = await readGGUFHeader(fixtures.tinyRandomLlama2);
    assert.equal(h.tensors.length, 12);
    assert.equal(h.kv.size, 18);
    assert.equal(h.tensors.filter((t) => ggmlTypeName(t.type) === "F16").length, 9);
    assert.equal(h.tensors.filter((t) => ggmlTypeName(t.type) === "F32").length, 3);
    assert.equal(ggufNumber(h, "general.file_type"), 1);
    assert.equal(fileTypeName(ggufNumber(h, "general.file_type")), "F16");
    assert.equal(ggufString(h, "general.name"), "LLaMA v2");
    assert.equal(archKey(h, "context_length"), 4096);
    assert.equal((h.kv.get("tokenizer.ggml.tokens")?.value as string[]).length, 32000);
    const embd = h.tensors.find((t) => t.name === "token_embd.weight")!;
    assert.deepEqual(embd.dims, [8, 32000]);
    assert.equal(embd.size, 8 * 32000 * 2);
    assert.equal(h.dataOffset, 724416);
    assert.equal(parameterCount(h), 8 * 32000 * 2 + 4 * 64 + 3 * 256 + 3 * 8);
  });

  test("vocab-only GGUF: no tensors, file ends right after the header", async () => {
    const h = await readGGUFHeader(fixtures.vocabLlamaSpm);
    const size = (await readFile(fixtures.vocabLlamaSpm)).length;
    assert.equal(h.tensors.length, 0);
    assert.equal(h.kv.size, 22);
    assert.equal(h.headerSize, size);
    assert.ok(h.dataOffset > size, "the aligned data offset lies past the end of this file");
    validateGGUFLayout(h, size);
    assert.equal(ggufBool(h, "tokenizer.ggml.add_bos_token"), true);
    assert.equal(ggufBool(h, "tokenizer.ggml.add_eos_token"), false);
    assert.equal(ggufString(h, "tokenizer.ggml.pre"), "default");
    // A token that is a lone byte-order mark must not be swallowed by UTF-8 decoding.
    assert.ok((h.kv.get("tokenizer.ggml.tokens")?.value as string[]).includes("\uFEFF"));
    assert.equal(parameterCount(h), 0);
  });

  test("parseGGUFHeader over bytes in memory agrees with readGGUFHeader", async () => {
    const bytes = await readFile(fixtures.stories260K);
    const a = await readGGUFHeader(fixtures.stories260K);
    const b = await parseGGUFHeader(bytes, { validateLayout: true });
    assert.deepEqual(b.tensors, a.tensors);
    assert.deepEqual([...b.kv.entries()], [...a.kv.entries()]);
    // A prefix that holds the whole header is enough.
    const c = await parseGGUFHeader(bytes.subarray(0, a.headerSize));
    assert.equal(c.tensors.length, 48);
  });

  test("kvToJSON gives /api/show model_info", async () => {
    const h = await readGGUFHeader(fixtures.stories260K);
    const info = kvToJSON(h);
    assert.equal(info["general.name"], undefined);
    assert.equal(info["general.architecture"], "llama");
    assert.equal(info["general.parameter_count"], 292800);
    assert.equal(info["llama.context_length"], 2048);
    assert.equal(info["llama.attention.layer_norm_rms_epsilon"], 0.00001);
    assert.deepEqual(info["tokenizer.ggml.tokens"], []);
    assert.equal(info["tokenizer.ggml.padding_token_id"], 4294967295);
    const keys = Object.keys(info);
    assert.deepEqual(keys, [...keys].sort());
    assert.equal(keys.length, 19); // 19 KV - general.name + general.parameter_count

    const verbose = kvToJSON(h, { verbose: true });
    assert.equal((verbose["tokenizer.ggml.tokens"] as string[]).length, 512);
    assert.equal((verbose["tokenizer.ggml.scores"] as number[]).length, 512);
    assert.doesNotThrow(() => JSON.stringify(verbose));
  });

  test("kvToJSON drops the chat template and renders big u64 as strings", async () => {
    const b = new Bytes().head(0, 4);
    b.kvString("general.architecture", "x");
    b.kvString("tokenizer.chat_template", "{{ messages }}");
    b.str("x.big").u32(10).u64(2n ** 63n + 5n);
    b.str("x.small").u32(9).u32(GGUFValueType.UINT8).u64(3).u8(1).u8(2).u8(3);
    const h = await parseGGUFHeader(b.bytes());
    const info = kvToJSON(h);
    assert.equal(info["tokenizer.chat_template"], undefined);
    assert.equal(info["x.big"], (2n ** 63n + 5n).toString());
    assert.deepEqual(info["x.small"], [1, 2, 3]);
    assert.equal(info["general.parameter_count"], 0);
  });

  test("a header without general.architecture reports unknown", async () => {
    const h = await parseGGUFHeader(new Bytes().head(0, 0).bytes());
    assert.equal(architecture(h), "unknown");
    assert.equal(archKey(h, "context_length"), undefined);
  });

  test("reads the header of a multi-gigabyte file without reading its data", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gguf-big-"));
    try {
      const n = 768 * 1024 * 1024; // 3 GiB of F32
      const b = new Bytes().head(1, 1);
      b.kvString("general.architecture", "big");
      b.tensor("huge", [n], 0, 0);
      const header = b.bytes();
      const dataOffset = Math.ceil(header.length / 32) * 32;
      const path = join(dir, "big.gguf");
      await writeFile(path, header);
      const fh = await open(path, "r+");
      await fh.truncate(dataOffset + n * 4); // sparse: takes no disk space
      await fh.close();
      const before = process.memoryUsage().rss;
      const readBefore = bytesReadByProcess();
      const h = await readGGUFHeader(path);
      const readAfter = bytesReadByProcess();
      // Counted, not timed: the bytes the process read (where Linux counts them) and kept.
      if (readBefore !== undefined && readAfter !== undefined) {
        assert.ok(readAfter - readBefore < 16 * 1024 * 1024, `read ${readAfter - readBefore} bytes for a ${header.length}-byte header`);
      }
      assert.ok(process.memoryUsage().rss - before < 256 * 1024 * 1024);
      assert.equal(h.tensors[0]?.size, n * 4);
      assert.equal(parameterCount(h), n);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** One KV of every value type, plus a tensor, in any layout. */
function everyType(le: boolean, version: number, magic = "GGUF"): Uint8Array {
  const b = new Bytes(le, version).head(1, 15, magic);
  b.str("general.architecture").u32(8).str("demo");
  b.str("t.u8").u32(0).u8(200);
  b.str("t.i8").u32(1).i8(-100);
  b.str("t.u16").u32(2).u16(60000);
  b.str("t.i16").u32(3).i16(-30000);
  b.str("t.u32").u32(4).u32(4000000000);
  b.str("t.i32").u32(5).i32(-2000000000);
  b.str("t.f32").u32(6).f32(1.5);
  b.str("t.bool").u32(7).u8(1);
  b.str("t.u64").u32(10).u64(2n ** 60n + 1n);
  b.str("t.u64small").u32(10).u64(12345);
  b.str("t.i64").u32(11).i64(-(2n ** 62n));
  b.str("t.f64").u32(12).f64(-0.125);
  b.str("t.strings").u32(9).u32(8).size(2).str("a").str("é");
  // An array of two arrays: [u16: 1, 2] and [string: "x"].
  b.str("t.nested").u32(9).u32(9).size(2);
  b.u32(2).size(2).u16(1).u16(2);
  b.u32(8).size(1).str("x");
  b.tensor("w", [32, 2], 2, 0); // Q4_0: 2 rows of one 18-byte block
  return b.bytes();
}

describe("layouts", () => {
  const expected = (h: GGUFHeader): void => {
    const v = (k: string): unknown => h.kv.get(k)?.value;
    assert.equal(v("general.architecture"), "demo");
    assert.equal(v("t.u8"), 200);
    assert.equal(v("t.i8"), -100);
    assert.equal(v("t.u16"), 60000);
    assert.equal(v("t.i16"), -30000);
    assert.equal(v("t.u32"), 4000000000);
    assert.equal(v("t.i32"), -2000000000);
    assert.equal(v("t.f32"), 1.5);
    assert.equal(v("t.bool"), true);
    assert.equal(v("t.u64"), 2n ** 60n + 1n);
    assert.equal(v("t.u64small"), 12345);
    assert.equal(v("t.i64"), -(2n ** 62n));
    assert.equal(v("t.f64"), -0.125);
    assert.deepEqual(v("t.strings"), ["a", "é"]);
    const nested = v("t.nested") as unknown[][];
    assert.deepEqual(nested, [[1, 2], ["x"]]);
    assert.equal(h.kv.get("t.nested")?.arrayType, GGUFValueType.ARRAY);
    assert.equal(arrayItemType(nested[0] as number[]), GGUFValueType.UINT16);
    assert.equal(arrayItemType(nested[1] as string[]), GGUFValueType.STRING);
    assert.deepEqual(h.tensors, [{ name: "w", dims: [32, 2], type: 2, offset: 0, size: 36 }]);
  };

  test("v3 little-endian", async () => {
    const h = await parseGGUFHeader(everyType(true, 3));
    assert.equal(h.littleEndian, true);
    expected(h);
  });
  test("v2 little-endian", async () => {
    const h = await parseGGUFHeader(everyType(true, 2));
    assert.equal(h.version, 2);
    expected(h);
  });
  test("v1: u32 counts, lengths and dimensions", async () => {
    const h = await parseGGUFHeader(everyType(true, 1));
    assert.equal(h.version, 1);
    expected(h);
  });
  test("big-endian with the GGUF magic (llama.cpp)", async () => {
    const bytes = everyType(false, 3);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x47, 0x47, 0x55, 0x46, 0, 0, 0, 3]);
    const h = await parseGGUFHeader(bytes);
    assert.equal(h.littleEndian, false);
    expected(h);
  });
  test("big-endian with the swapped FUGG magic (Ollama)", async () => {
    const h = await parseGGUFHeader(everyType(false, 2, "FUGG"));
    assert.equal(h.littleEndian, false);
    assert.equal(h.version, 2);
    expected(h);
  });
  test("general.alignment moves the data offset", async () => {
    const b = new Bytes().head(1, 1);
    b.kvU32("general.alignment", 256);
    b.tensor("w", [4], 0, 0);
    const h = await parseGGUFHeader(b.bytes());
    assert.equal(h.alignment, 256);
    assert.equal(h.dataOffset, 256);
  });
});

describe("malformed input is refused with GGUFError", () => {
  const parse = (b: Bytes | Uint8Array, name = "bad.gguf") => parseGGUFHeader(b instanceof Bytes ? b.bytes() : b, { name });

  test("bad magic says what was found", async () => {
    const e = await rejectsGGUF(parse(new Bytes().ascii("GGML").u32(3).u64(0).u64(0)), /bad magic/);
    assert.match(e.message, /"GGML"/);
    assert.match(e.message, /expected "GGUF"/);
    assert.match(e.message, /^bad\.gguf: /);
    await rejectsGGUF(parse(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0])), /bad magic: found bytes 89 50 4e 47/);
    await rejectsGGUF(parse(new TextEncoder().encode("{\"safetensors\": 1}")), /bad magic/);
  });

  test("empty and tiny files", async () => {
    await rejectsGGUF(parse(new Uint8Array(0)), /truncated/);
    await rejectsGGUF(parse(new Bytes().ascii("GGU")), /truncated/);
    await rejectsGGUF(parse(new Bytes().ascii("GGUF")), /truncated: version/);
  });

  test("unsupported version", async () => {
    await rejectsGGUF(parse(new Bytes(true, 4).head(0, 0)), /unsupported version 4 \(expected 1, 2 or 3\) \(at byte 4\)/);
    await rejectsGGUF(parse(new Bytes(true, 0).head(0, 0)), /unsupported version 0/);
  });

  test("truncated at many points of a real header", async () => {
    const bytes = await readFile(fixtures.stories260K);
    for (const cut of [5, 8, 12, 20, 23, 24, 31, 40, 60, 100, 1000, 9000, 14000, 14151]) {
      await rejectsGGUF(parse(bytes.subarray(0, cut), `cut-${cut}`), new RegExp(`^cut-${cut}: invalid GGUF: .*(truncated|remain)`));
    }
  });

  test("a file cut inside the tensor data is refused by the layout check", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gguf-cut-"));
    try {
      const bytes = await readFile(fixtures.stories260K);
      const path = join(dir, "cut.gguf");
      await writeFile(path, bytes.subarray(0, bytes.length - 100));
      const e = await rejectsGGUF(readGGUFHeader(path), /tensor "blk\.4\.ffn_norm\.weight" data .* extends past the end of the file/);
      assert.ok(e.message.startsWith(path));
      const h = await readGGUFHeader(path, { validateLayout: false });
      assert.equal(h.tensors.length, 48);
      await writeFile(path, bytes.subarray(0, 9000));
      await rejectsGGUF(readGGUFHeader(path), /truncated|remaining/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("absurd counts", async () => {
    await rejectsGGUF(parse(new Bytes().head(1e12, 0)), /claims 1000000000000 tensors .* more than the 0 remaining bytes/);
    await rejectsGGUF(parse(new Bytes().head(0, 2n ** 40n)), /1099511627776 metadata entries/);
    await rejectsGGUF(parse(new Bytes().head(2n ** 62n, 0)), /tensor count 4611686018427387904 is too large \(at byte 8\)/);
    // -1 as a signed count
    await rejectsGGUF(parse(new Bytes().head(0, 0xffffffffffffffffn)), /metadata count 18446744073709551615 is too large/);
    await rejectsGGUF(parse(new Bytes(true, 1).head(0xffffffff, 0)), /4294967295 tensors/);
  });

  test("string lengths beyond the file", async () => {
    await rejectsGGUF(parse(new Bytes().head(0, 1).u64(2n ** 40n).ascii("abcdefghijklmnop")), /key of metadata entry 0 has length 1099511627776 but only 16 bytes remain in the file \(at byte 24\)/);
    await rejectsGGUF(parse(new Bytes().head(0, 1).u64(0xffffffffffffffffn).ascii("abcdefgh")), /length of key of metadata entry 0 18446744073709551615 is too large/);
    const b = new Bytes().head(0, 1).str("general.name").u32(8).u64(1000).ascii("short");
    await rejectsGGUF(parse(b), /metadata "general.name" has length 1000 but only 5 bytes remain/);
  });

  test("array counts beyond the file", async () => {
    const b = new Bytes().head(0, 1).str("a").u32(9).u32(8).u64(2n ** 50n);
    await rejectsGGUF(parse(b), /metadata "a" claims 1125899906842624 string elements/);
    const c = new Bytes().head(0, 1).str("a").u32(9).u32(4).u64(100).u32(1);
    await rejectsGGUF(parse(c), /claims 100 u32 elements, more than the 4 remaining bytes/);
  });

  test("unknown value types", async () => {
    await rejectsGGUF(parse(new Bytes().head(0, 1).str("k").u32(13).u64(0)), /metadata "k" has unknown value type 13/);
    await rejectsGGUF(parse(new Bytes().head(0, 1).str("k").u32(9).u32(99).u64(0)), /element type of metadata "k" has unknown value type 99/);
  });

  test("arrays nested too deep", async () => {
    const b = new Bytes().head(0, 1).str("deep").u32(9);
    for (let i = 0; i < 20; i++) b.u32(9).u64(1);
    b.u32(4).u64(0);
    await rejectsGGUF(parse(b), /nests arrays more than 8 deep/);
  });

  test("duplicate keys and tensor names", async () => {
    const b = new Bytes().head(0, 2).kvU32("a.b", 1).kvU32("a.b", 2);
    await rejectsGGUF(parse(b), /duplicate metadata key "a.b"/);
    const t = new Bytes().head(2, 0).tensor("w", [4], 0, 0).tensor("w", [4], 0, 32).raw(...new Array(64).fill(0));
    await rejectsGGUF(parse(t), /duplicate tensor name "w"/);
  });

  test("alignment that is not a power of two", async () => {
    await rejectsGGUF(parse(new Bytes().head(0, 1).kvU32("general.alignment", 48)), /general.alignment is 48; it must be a power of two/);
    await rejectsGGUF(parse(new Bytes().head(0, 1).kvU32("general.alignment", 0)), /general.alignment is 0/);
  });

  test("bad tensor infos", async () => {
    const pad = new Array(64).fill(0);
    await rejectsGGUF(parse(new Bytes().head(1, 0).tensor("w", [1, 1, 1, 1, 1], 0, 0).raw(...pad)), /tensor "w" has 5 dimensions \(at most 4/);
    await rejectsGGUF(parse(new Bytes().head(1, 0).tensor("w", [4], 4, 0).raw(...pad)), /tensor "w" has unknown ggml type 4/);
    await rejectsGGUF(parse(new Bytes().head(1, 0).tensor("w", [4], 99, 0).raw(...pad)), /unknown ggml type 99/);
    await rejectsGGUF(parse(new Bytes().head(1, 0).tensor("w", [33], 2, 0).raw(...pad)), /first dimension 33 is not a multiple of the Q4_0 block size 32/);
    await rejectsGGUF(parse(new Bytes().head(1, 0).tensor("w", [2 ** 30, 2 ** 30], 0, 0).raw(...pad)), /exceeds 2\^53/);
    await rejectsGGUF(parse(new Bytes().head(1, 0).str("w").u32(1).u64(2n ** 63n).u32(0).u64(0).raw(...pad)), /dimension 0 of tensor "w" 9223372036854775808 is too large/);
    await rejectsGGUF(parse(new Bytes().head(1, 0).str("w").u32(1).u64(4).u32(0).u64(2n ** 60n).raw(...pad)), /data offset 1152921504606846976, which is too large/);
  });

  test("layout: misaligned, overlapping and out-of-file tensors name the tensor", async () => {
    const h = await parseGGUFHeader(new Bytes().head(3, 0).tensor("a", [8], 0, 0).tensor("b", [8], 0, 64).tensor("c", [16], 0, 96).bytes());
    assert.equal(h.headerSize, 24 + 3 * 33);
    assert.equal(h.dataOffset, 128);
    validateGGUFLayout(h, 128 + 160);
    assert.throws(() => validateGGUFLayout(h, 128 + 159, "f.gguf"), /^GGUFError: f\.gguf: invalid GGUF: tensor "c" data \[224, 288\) extends past the end of the file \(287 bytes\)/);
    const overlap = { ...h, tensors: h.tensors.map((t) => (t.name === "c" ? { ...t, offset: 64 } : t)) };
    assert.throws(() => validateGGUFLayout(overlap, 1000), (e: unknown) => e instanceof GGUFError && /tensor "c" data at offset 64 overlaps tensor "b"/.test(e.message));
    const misaligned = { ...h, tensors: h.tensors.map((t) => (t.name === "b" ? { ...t, offset: 40 } : t)) };
    assert.throws(() => validateGGUFLayout(misaligned, 1000), /tensor "b" has data offset 40, which is not a multiple of the alignment 32/);
  });

  test("a missing file is an ordinary ENOENT, not a GGUFError", async () => {
    await assert.rejects(readGGUFHeader("/nonexistent/model.gguf"), (e: NodeJS.ErrnoException) => e.code === "ENOENT");
  });
});

describe("types", () => {
  test("tensorByteSize", () => {
    assert.equal(tensorByteSize(0, [64, 512]), 131072);
    assert.equal(tensorByteSize(1, [8, 32000]), 512000);
    assert.equal(tensorByteSize(2, [4096, 4096]), (4096 * 4096 / 32) * 18);
    assert.equal(tensorByteSize(8, [4096, 2]), (8192 / 32) * 34);
    assert.equal(tensorByteSize(12, [4096, 4096]), (4096 * 4096 / 256) * 144);
    assert.equal(tensorByteSize(14, [256]), 210);
    assert.equal(tensorByteSize(30, [3, 5]), 30);
    assert.equal(tensorByteSize(39, [64]), 34);
    assert.equal(tensorByteSize(0, []), 4);
    assert.throws(() => tensorByteSize(12, [100]), /not a multiple of the Q4_K block size 256/);
  });

  test("file type names", () => {
    assert.equal(fileTypeName(undefined), "unknown");
    assert.equal(fileTypeName(0), "unknown");
    assert.equal(fileTypeName(1), "F16");
    assert.equal(fileTypeName(2), "Q4_0");
    assert.equal(fileTypeName(7), "Q8_0");
    assert.equal(fileTypeName(15), "Q4_K_M");
    assert.equal(fileTypeName(32), "BF16");
    assert.equal(fileTypeName(38), "MXFP4_MOE");
    assert.equal(fileTypeName(40), "Q1_0");
    assert.equal(fileTypeName(4), "unknown");
    assert.equal(fileTypeName(33), "unknown");
    assert.equal(fileTypeName(1000), "unknown");
    assert.equal(fileTypeId("F32"), 0);
    assert.equal(fileTypeId("q4_k_m"), 15);
    assert.equal(fileTypeId("Q4_K"), 15);
    assert.equal(fileTypeId("bf16"), 32);
    assert.equal(fileTypeId("unknown"), undefined);
    for (let n = 1; n <= 40; n++) {
      const name = fileTypeName(n);
      if (name !== "unknown") assert.equal(fileTypeId(name), n);
    }
  });
});
