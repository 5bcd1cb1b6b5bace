import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixtures } from "../../../test/fixtures.ts";
import {
  GGUFValueType,
  GGUFWriteError,
  encodeGGUFHeader,
  ggufArray,
  readGGUFHeader,
  writeGGUF,
  type GGUFHeader,
  type GGUFKV,
} from "@corral/shared/gguf/index";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gguf-writer-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = async (path: string): Promise<string> => createHash("sha256").update(await readFile(path)).digest("hex");

/** Rewrites a GGUF from its own header, streaming the tensor data from the original. */
async function rewrite(src: string, out: string): Promise<GGUFHeader> {
  const h = await readGGUFHeader(src);
  await writeGGUF(out, {
    kv: [...h.kv.values()],
    tensors: h.tensors.map((t) => ({ ...t, source: { path: src, offset: h.dataOffset + t.offset, size: t.size } })),
  });
  return h;
}

describe("writeGGUF", () => {
  test("a minimal 68-byte GGUF", async () => {
    const kv: GGUFKV[] = [{ key: "general.architecture", type: GGUFValueType.STRING, value: "test" }];
    const out = join(dir, "minimal.gguf");
    const res = await writeGGUF(out, { kv, tensors: [] });
    assert.equal(res.size, 68);
    const bytes = await readFile(out);
    assert.equal(bytes.length, 68);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), "89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fad");
    const enc = encodeGGUFHeader({ kv, tensors: [] });
    assert.deepEqual(Buffer.from(enc.bytes), bytes);
    assert.equal(enc.fileSize, 68);
    const h = await readGGUFHeader(out);
    assert.equal(h.kv.get("general.architecture")?.value, "test");
  });

  for (const [name, path] of Object.entries(fixtures)) {
    test(`rewriting ${name} reproduces the file byte for byte`, async () => {
      const out = join(dir, `${name}.rewritten.gguf`);
      const h = await rewrite(path, out);
      assert.equal(await sha256(out), await sha256(path));
      const back = await readGGUFHeader(out);
      assert.deepEqual([...back.kv.entries()], [...h.kv.entries()]);
      assert.deepEqual(back.tensors, h.tensors);
    });
  }

  test("in-memory tensor data: offsets aligned, padding zeroed, data in place", async () => {
    const q4 = Uint8Array.from({ length: 72 }, (_, i) => i + 1); // Q4_0 [64, 2]: 4 blocks of 18 bytes
    const f16 = Uint8Array.from([1, 2, 3, 4, 5, 6]); // F16 [3]
    const f32 = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer); // F32 [4, 2]
    const out = join(dir, "mem.gguf");
    const res = await writeGGUF(out, {
      kv: [{ key: "general.architecture", type: GGUFValueType.STRING, value: "mem" }],
      tensors: [
        { name: "q", dims: [64, 2], type: 2, source: q4 },
        { name: "h", dims: [3], type: 1, source: f16 },
        { name: "f", dims: [4, 2], type: 0, source: f32 },
      ],
    });
    assert.deepEqual(res.offsets, [0, 96, 128]);
    const h = await readGGUFHeader(out);
    assert.deepEqual(h.tensors.map((t) => [t.name, t.offset, t.size]), [["q", 0, 72], ["h", 96, 6], ["f", 128, 32]]);
    const bytes = await readFile(out);
    assert.equal(bytes.length, h.dataOffset + 160);
    assert.deepEqual(bytes.subarray(h.dataOffset, h.dataOffset + 72), Buffer.from(q4));
    assert.ok(bytes.subarray(h.dataOffset + 72, h.dataOffset + 96).every((b) => b === 0));
    assert.deepEqual(bytes.subarray(h.dataOffset + 96, h.dataOffset + 102), Buffer.from(f16));
    assert.ok(bytes.subarray(h.dataOffset + 102, h.dataOffset + 128).every((b) => b === 0));
    assert.deepEqual(bytes.subarray(h.dataOffset + 128, h.dataOffset + 160), Buffer.from(f32));
    assert.ok(bytes.subarray(h.headerSize, h.dataOffset).every((b) => b === 0));
  });

  test("every value type, nested arrays and big integers survive a round trip", async () => {
    const kv: GGUFKV[] = [
      { key: "general.architecture", type: GGUFValueType.STRING, value: "types" },
      { key: "t.u8", type: GGUFValueType.UINT8, value: 255 },
      { key: "t.i8", type: GGUFValueType.INT8, value: -128 },
      { key: "t.u16", type: GGUFValueType.UINT16, value: 65535 },
      { key: "t.i16", type: GGUFValueType.INT16, value: -32768 },
      { key: "t.u32", type: GGUFValueType.UINT32, value: 4294967295 },
      { key: "t.i32", type: GGUFValueType.INT32, value: -2147483648 },
      { key: "t.f32", type: GGUFValueType.FLOAT32, value: Math.fround(0.1) },
      { key: "t.bool", type: GGUFValueType.BOOL, value: false },
      { key: "t.str", type: GGUFValueType.STRING, value: "héllo ✓ \u0000 end" },
      { key: "t.u64", type: GGUFValueType.UINT64, value: 2n ** 64n - 1n },
      { key: "t.i64", type: GGUFValueType.INT64, value: -(2n ** 63n) },
      { key: "t.i64small", type: GGUFValueType.INT64, value: -5 },
      { key: "t.f64", type: GGUFValueType.FLOAT64, value: Math.PI },
      { key: "t.arr", type: GGUFValueType.ARRAY, arrayType: GGUFValueType.FLOAT32, value: [0.5, -2, 1e10] },
      { key: "t.empty", type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING, value: [] },
      {
        key: "t.nested",
        type: GGUFValueType.ARRAY,
        arrayType: GGUFValueType.ARRAY,
        value: [ggufArray([1, 2, 3], GGUFValueType.UINT8), ggufArray(["a"], GGUFValueType.STRING), ggufArray([], GGUFValueType.INT64)],
      },
    ];
    const out = join(dir, "types.gguf");
    await writeGGUF(out, { kv, tensors: [] });
    const h = await readGGUFHeader(out);
    assert.deepEqual([...h.kv.values()], kv);
    // Writing what was read gives the same bytes, nested element types included.
    const again = join(dir, "types2.gguf");
    await writeGGUF(again, { kv: [...h.kv.values()], tensors: [] });
    assert.equal(await sha256(again), await sha256(out));
  });

  test("a custom alignment comes from general.alignment", async () => {
    const out = join(dir, "align.gguf");
    const res = await writeGGUF(out, {
      kv: [{ key: "general.alignment", type: GGUFValueType.UINT32, value: 64 }],
      tensors: [
        { name: "a", dims: [3], type: 0, source: new Uint8Array(12) },
        { name: "b", dims: [3], type: 0, source: new Uint8Array(12).fill(7) },
      ],
      alignment: 64,
    });
    assert.deepEqual(res.offsets, [0, 64]);
    const h = await readGGUFHeader(out);
    assert.equal(h.alignment, 64);
    assert.equal(h.dataOffset % 64, 0);
    assert.equal((await readFile(out)).length, h.dataOffset + 128);
  });

  const arch: GGUFKV = { key: "general.architecture", type: GGUFValueType.STRING, value: "x" };
  const refusals: Array<[string, Parameters<typeof writeGGUF>[1], RegExp]> = [
    ["u8 out of range", { kv: [{ key: "k", type: GGUFValueType.UINT8, value: 256 }], tensors: [] }, /metadata "k": value 256 does not fit type u8/],
    ["fraction in an integer", { kv: [{ key: "k", type: GGUFValueType.INT32, value: 1.5 }], tensors: [] }, /value 1.5 does not fit type i32/],
    ["negative u64", { kv: [{ key: "k", type: GGUFValueType.UINT64, value: -1n }], tensors: [] }, /value -1n does not fit type u64/],
    ["string for a bool", { kv: [{ key: "k", type: GGUFValueType.BOOL, value: "yes" }], tensors: [] }, /does not fit type bool/],
    ["unknown value type", { kv: [{ key: "k", type: 42 as GGUFValueType, value: 1 }], tensors: [] }, /unknown value type 42/],
    ["array without element type", { kv: [{ key: "k", type: GGUFValueType.ARRAY, value: [1, 2] }], tensors: [] }, /element type is not known/],
    ["array element of the wrong type", { kv: [{ key: "k", type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING, value: ["a", 2] }], tensors: [] }, /metadata "k"\[1\]: value 2 does not fit type string/],
    ["duplicate key", { kv: [arch, arch], tensors: [] }, /duplicate metadata key "general.architecture"/],
    ["duplicate tensor", { kv: [arch], tensors: [{ name: "w", dims: [1], type: 0, source: new Uint8Array(4) }, { name: "w", dims: [1], type: 0, source: new Uint8Array(4) }] }, /duplicate tensor name "w"/],
    ["unknown ggml type", { kv: [arch], tensors: [{ name: "w", dims: [1], type: 5, source: new Uint8Array(4) }] }, /tensor "w": unknown ggml type 5/],
    ["five dimensions", { kv: [arch], tensors: [{ name: "w", dims: [1, 1, 1, 1, 1], type: 0, source: new Uint8Array(4) }] }, /5 dimensions/],
    ["partial block", { kv: [arch], tensors: [{ name: "w", dims: [16], type: 8, source: new Uint8Array(17) }] }, /not a multiple of the Q8_0 block size 32/],
    ["source of the wrong size", { kv: [arch], tensors: [{ name: "w", dims: [2], type: 0, source: new Uint8Array(4) }] }, /tensor "w" needs 8 bytes but its source holds 4/],
    ["alignment disagreeing with the metadata", { kv: [arch], tensors: [], alignment: 64 }, /alignment 64 disagrees with the metadata/],
    ["alignment not a power of two", { kv: [{ key: "general.alignment", type: GGUFValueType.UINT32, value: 24 }], tensors: [] }, /general.alignment is 24; it must be a power of two/],
  ];
  for (const [what, spec, pattern] of refusals) {
    test(`refuses ${what}`, async () => {
      const out = join(dir, "refused.gguf");
      await assert.rejects(writeGGUF(out, spec), (e: unknown) => e instanceof GGUFWriteError && pattern.test(e.message) && e.message.includes(out));
      await assert.rejects(readFile(out), { code: "ENOENT" });
    });
  }

  test("a source file that ends early leaves nothing behind", async () => {
    const sub = await mkdtemp(join(dir, "short-"));
    const src = join(sub, "short.bin");
    await writeFile(src, new Uint8Array(10));
    const out = join(sub, "out.gguf");
    await assert.rejects(
      writeGGUF(out, { kv: [arch], tensors: [{ name: "w", dims: [4], type: 0, source: { path: src, offset: 0, size: 16 } }] }),
      /tensor "w": source ".*short\.bin" ends at byte 10, before the 16 bytes at offset 0 were read/,
    );
    assert.deepEqual(await readdir(sub), ["short.bin"]);
  });
});
