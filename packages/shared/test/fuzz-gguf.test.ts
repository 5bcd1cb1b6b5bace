// Property-based tests of the GGUF header reader on hostile bytes: real headers from the fixtures
// with bits flipped, bytes inserted or dropped, fields overwritten with huge or "negative" values,
// and headers assembled from hostile fields. Each case must end in a header or a GGUFError, never
// another exception, and the reader may not decode more values or read more bytes than the input
// holds (so no case can make it allocate beyond the file's own size). What a case may do is bounded
// by counts, not by a clock: the bytes asked of the source (each at most twice) and the values
// decoded (at most one per byte); a case that never ends is ended by the test runner's overall
// limit. That the reader's work grows linearly with its input is gguf-reader-work.test.ts.
// FUZZ_SEED=<n> replays a failure (fast-check prints the seed and path); FUZZ_RUNS=<n> scales it.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { fixtures } from "../../../test/fixtures.ts";
import { bytesReadByProcess } from "../../../test/helpers/bytes-read.ts";
import {
  GGUFError,
  architecture,
  kvToJSON,
  parameterCount,
  parseGGUFHeader,
  readGGUFHeader,
  validateGGUFLayout,
  type GGUFByteSource,
  type GGUFHeader,
  type GGUFValue,
} from "@corral/shared/gguf/index";

function runs(n: number): fc.Parameters<unknown> {
  const seed = process.env["FUZZ_SEED"];
  return { numRuns: Math.max(1, Math.round(Number(process.env["FUZZ_RUNS"] ?? 1) * n)), ...(seed ? { seed: Number(seed) } : {}) };
}

/**
 * A byte source that records how much was asked of it. The reader buffers forward from its
 * position and consumes what it asked for before asking again, so no byte is fetched more than
 * twice; a reader asking for more is re-reading in a loop, and is stopped at once instead of
 * running on.
 */
function countingSource(bytes: Uint8Array): GGUFByteSource & { requested: number; largest: number } {
  const src = {
    size: bytes.length,
    requested: 0,
    largest: 0,
    read: async (offset: number, length: number): Promise<Uint8Array> => {
      assert.ok(Number.isSafeInteger(offset) && offset >= 0 && offset <= bytes.length, `read at offset ${offset}`);
      assert.ok(Number.isSafeInteger(length) && length >= 0, `read of length ${length}`);
      src.requested += length;
      src.largest = Math.max(src.largest, length);
      assert.ok(src.requested <= 2 * bytes.length, `the reader asked for ${src.requested} bytes of a ${bytes.length}-byte source`);
      return bytes.subarray(offset, Math.min(bytes.length, offset + length));
    },
  };
  return src;
}

function countValues(v: GGUFValue): number {
  return Array.isArray(v) ? 1 + v.reduce<number>((n, x) => n + countValues(x), 0) : 1;
}

/** Parses hostile bytes and checks every bound; returns the header or the GGUFError. */
async function parseHostile(bytes: Uint8Array, validateLayout = false): Promise<GGUFHeader | GGUFError> {
  const src = countingSource(bytes);
  let result: GGUFHeader | GGUFError;
  try {
    result = await parseGGUFHeader(src, { name: "fuzz.gguf", validateLayout });
  } catch (e) {
    if (!(e instanceof GGUFError)) throw e;
    result = e;
  }
  // Every read is clamped to the source; the reader's buffer never exceeds the file.
  assert.ok(src.largest <= Math.max(bytes.length, 0), `one read asked for ${src.largest} bytes of a ${bytes.length}-byte source`);
  if (result instanceof GGUFError) {
    assert.match(result.message, /^fuzz\.gguf: invalid GGUF: /);
    return result;
  }
  let values = result.tensors.length;
  for (const kv of result.kv.values()) values += countValues(kv.value);
  assert.ok(values <= bytes.length, `decoded ${values} values from ${bytes.length} bytes`);
  for (const t of result.tensors) {
    assert.ok(t.dims.length <= 4 && Number.isSafeInteger(t.size) && t.size >= 0 && Number.isSafeInteger(t.offset) && t.offset >= 0);
  }
  assert.ok(result.dataOffset >= result.headerSize && result.dataOffset % result.alignment === 0);
  // What the daemon does with a header next must not throw either.
  JSON.stringify(kvToJSON(result, { verbose: true }));
  JSON.stringify(kvToJSON(result));
  parameterCount(result);
  architecture(result);
  return result;
}

// Values that make counts, lengths, dimensions and offsets hostile: the u64 top bit ("negative"
// when read signed), just past 2^53, all ones, and numbers that overflow when multiplied.
const HOSTILE_U64 = [
  0n, 1n, 2n, 3n, 4n, 7n, 8n, 9n, 12n, 13n, 31n, 32n, 255n, 65535n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n,
  2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n - 8n,
];
const HOSTILE_U32 = [0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 255, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "byte"; at: number; value: number }
  | { kind: "u32"; at: number; value: number }
  | { kind: "u64"; at: number; value: bigint }
  | { kind: "insert"; at: number; bytes: number[] }
  | { kind: "delete"; at: number; count: number }
  | { kind: "truncate"; at: number };

// Positions are fractions of the length so that they stay meaningful after earlier mutations;
// most land in the first kilobyte, where the counts, the first keys and their lengths live.
const position = fc.oneof(
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 23 }).map((n) => ({ abs: n })) },
  { weight: 8, arbitrary: fc.integer({ min: 24, max: 1023 }).map((n) => ({ abs: n })) },
  { weight: 3, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((f) => ({ frac: f })) },
);
const mutation: fc.Arbitrary<{ pos: { abs: number } | { frac: number }; m: Omit<Mutation, "at"> }> = fc.record({
  pos: position,
  m: fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant("byte" as const), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("u32" as const), value: fc.constantFrom(...HOSTILE_U32) }),
    fc.record({ kind: fc.constant("u64" as const), value: fc.constantFrom(...HOSTILE_U64) }),
    fc.record({ kind: fc.constant("insert" as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant("delete" as const), count: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant("truncate" as const) }),
  ),
});

function applyMutations(original: Uint8Array, ms: Array<{ pos: { abs: number } | { frac: number }; m: Omit<Mutation, "at"> }>): Uint8Array {
  let b = Buffer.from(original);
  for (const { pos, m } of ms) {
    const at = Math.min(b.length, "abs" in pos ? pos.abs : Math.floor(pos.frac * b.length));
    const mm = { ...m, at } as Mutation;
    switch (mm.kind) {
      case "flip":
        if (at < b.length) b[at] = b[at]! ^ (1 << mm.bit);
        break;
      case "byte":
        if (at < b.length) b[at] = mm.value;
        break;
      case "u32":
        if (at + 4 <= b.length) b.writeUInt32LE(mm.value, at);
        break;
      case "u64":
        if (at + 8 <= b.length) b.writeBigUInt64LE(mm.value, at);
        break;
      case "insert":
        b = Buffer.concat([b.subarray(0, at), Buffer.from(mm.bytes), b.subarray(at)]);
        break;
      case "delete":
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + mm.count)]);
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

/** A small GGUF encoder for hostile headers: every field may be given any value. */
class HostileGGUF {
  private readonly out: Buffer[] = [];
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.out.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v));
    this.out.push(b);
    return this;
  }
  raw(bytes: Uint8Array): this {
    this.out.push(Buffer.from(bytes));
    return this;
  }
  str(s: string, claimed?: bigint): this {
    const b = Buffer.from(s, "utf8");
    return this.u64(claimed ?? BigInt(b.length)).raw(b);
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.out);
  }
}

type Field =
  | { f: "u32"; v: number }
  | { f: "u64"; v: bigint }
  | { f: "str"; s: string; claimed?: bigint }
  | { f: "raw"; b: Uint8Array }
  | { f: "kv"; key: string; type: number; value: Field[] }
  | { f: "array"; itemType: number; count: bigint; items: Field[] }
  | { f: "tensor"; name: string; dims: bigint[]; nDims?: number; type: number; offset: bigint };

const u32Field = fc.oneof(fc.constantFrom(...HOSTILE_U32), fc.integer({ min: 0, max: 40 })).map((v): Field => ({ f: "u32", v }));
const u64Field = fc.oneof(fc.constantFrom(...HOSTILE_U64), fc.bigInt({ min: 0n, max: 64n })).map((v): Field => ({ f: "u64", v }));
const strField = fc
  .record({ s: fc.string({ unit: "binary", maxLength: 12 }), claimed: fc.option(fc.constantFrom(...HOSTILE_U64), { nil: undefined }) })
  .map(({ s, claimed }): Field => (claimed === undefined ? { f: "str", s } : { f: "str", s, claimed }));
const rawField = fc.uint8Array({ maxLength: 24 }).map((b): Field => ({ f: "raw", b }));
const valueType = fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constantFrom(13, 255, 0xffffffff));

const { field } = fc.letrec<{ field: Field; array: Field; kv: Field; tensor: Field }>((tie) => ({
  field: fc.oneof({ depthSize: "small", withCrossShrink: true }, u32Field, u64Field, strField, rawField, tie("array"), tie("kv"), tie("tensor")),
  array: fc.record({
    f: fc.constant("array" as const),
    itemType: valueType,
    count: fc.oneof(fc.bigInt({ min: 0n, max: 6n }), fc.constantFrom(...HOSTILE_U64)),
    items: fc.array(tie("field"), { maxLength: 4 }),
  }),
  kv: fc.record({
    f: fc.constant("kv" as const),
    key: fc.constantFrom("general.architecture", "general.alignment", "llama.context_length", "tokenizer.ggml.tokens", "k", ""),
    type: valueType,
    value: fc.array(tie("field"), { maxLength: 3 }),
  }),
  tensor: fc.record(
    {
      f: fc.constant("tensor" as const),
      name: fc.constantFrom("t", "token_embd.weight", "", "t"),
      dims: fc.array(fc.oneof(fc.constantFrom(...HOSTILE_U64), fc.bigInt({ min: 0n, max: 4096n })), { maxLength: 5 }),
      nDims: fc.integer({ min: 0, max: 8 }),
      type: fc.oneof(fc.integer({ min: 0, max: 45 }), fc.constantFrom(0xffffffff)),
      offset: fc.oneof(fc.bigInt({ min: 0n, max: 4096n }), fc.constantFrom(...HOSTILE_U64)),
    },
    { requiredKeys: ["f", "name", "dims", "type", "offset"] },
  ),
}));

function encodeField(g: HostileGGUF, x: Field): void {
  switch (x.f) {
    case "u32": g.u32(x.v); break;
    case "u64": g.u64(x.v); break;
    case "str": g.str(x.s, x.claimed); break;
    case "raw": g.raw(x.b); break;
    case "kv":
      g.str(x.key).u32(x.type);
      for (const v of x.value) encodeField(g, v);
      break;
    case "array":
      g.u32(x.itemType).u64(x.count);
      for (const v of x.items) encodeField(g, v);
      break;
    case "tensor":
      g.str(x.name).u32(x.nDims ?? x.dims.length);
      for (const d of x.dims) g.u64(d);
      g.u32(x.type).u64(x.offset);
      break;
  }
}

const hostileHeader = fc
  .record({
    magic: fc.constantFrom("GGUF", "GGUF", "GGUF", "FUGG", "GGML", "GGU"),
    version: fc.constantFrom(1, 2, 3, 3, 3, 0, 4, 0x03000000, 0xffffffff),
    nTensors: fc.oneof({ weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 3n }) }, { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_U64) }),
    nKV: fc.oneof({ weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 4n }) }, { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_U64) }),
    fields: fc.array(field, { maxLength: 8 }),
  })
  .map(({ magic, version, nTensors, nKV, fields }) => {
    const g = new HostileGGUF().raw(Buffer.from(magic, "latin1")).u32(version).u64(nTensors).u64(nKV);
    for (const f of fields) encodeField(g, f);
    return g.bytes();
  });

/** Deeply nested arrays of arrays, each claiming one element more than the file can hold. */
function nestedArrays(depth: number, count: bigint): Uint8Array {
  const g = new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(0n).u64(1n).str("nested").u32(9);
  for (let i = 0; i < depth; i++) g.u32(9).u64(count);
  return g.raw(new Uint8Array(16)).bytes();
}

describe("GGUF reader on hostile bytes", () => {
  // Headers only (plus a little data): the vocab-only file is all header; the others are cut
  // after their tensor infos so that each case copies a few hundred kilobytes at most.
  const sources: Array<{ name: string; bytes: Uint8Array }> = [];
  let dir = "";

  before(async () => {
    for (const [name, path] of Object.entries(fixtures)) {
      const bytes = readFileSync(path);
      const h = await parseGGUFHeader(bytes);
      sources.push({ name, bytes: bytes.subarray(0, Math.min(bytes.length, h.dataOffset + 256)) });
    }
    // The smallest header first: it keeps mutated cases cheap.
    sources.sort((a, b) => a.bytes.length - b.bytes.length);
    dir = await mkdtemp(join(tmpdir(), "corral-fuzz-gguf-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads every fixture header unchanged (the baseline the mutations start from)", async () => {
    for (const s of sources) {
      const h = await parseHostile(s.bytes);
      assert.ok(!(h instanceof GGUFError), `${s.name}: ${String(h)}`);
    }
  });

  it("refuses mutated real headers with a GGUFError, within the file's bounds", async () => {
    const small = sources[0]!;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (ms) => {
        const r = await parseHostile(applyMutations(small.bytes, ms));
        if (r instanceof GGUFError) refused++;
      }),
      runs(400),
    );
    assert.ok(refused > 0, "no mutation was refused: the mutations do not reach the reader's checks");
  });

  it("holds on mutations of the large-vocabulary headers too", async () => {
    for (const s of sources.slice(1)) {
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
          await parseHostile(applyMutations(s.bytes, ms));
        }),
        runs(40),
      );
    }
  });

  it("refuses headers assembled from hostile fields", async () => {
    await fc.assert(
      fc.asyncProperty(hostileHeader, async (bytes) => {
        await parseHostile(bytes, true);
      }),
      runs(1500),
    );
  });

  it("refuses huge counts, lengths and nesting without allocating for them", async () => {
    const cases: Array<[string, Uint8Array]> = [
      ["u64 max tensor count", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(2n ** 64n - 1n).u64(0n).bytes()],
      ["2^53 metadata count", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(0n).u64(2n ** 53n).bytes()],
      ["negative string length", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(0n).u64(1n).str("k", 2n ** 63n).bytes()],
      ["v1 string of 4 GiB", new HostileGGUF().raw(Buffer.from("GGUF")).u32(1).u32(0).u32(1).u32(0xffffffff).raw(Buffer.from("k")).bytes()],
      ["array of 2^60 u64", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(0n).u64(1n).str("a").u32(9).u32(10).u64(2n ** 60n).bytes()],
      ["array of 2^40 strings", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(0n).u64(1n).str("a").u32(9).u32(8).u64(2n ** 40n).bytes()],
      ["nested arrays 1000 deep", nestedArrays(1000, 1n)],
      ["nested arrays claiming 2^32 each", nestedArrays(4, 2n ** 32n)],
      ["tensor with 2^62 x 2^62 elements", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(1n).u64(0n).str("t").u32(2).u64(2n ** 62n).u64(2n ** 62n).u32(0).u64(0n).bytes()],
      ["tensor with 2^40 dims", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(1n).u64(0n).str("t").u32(0xffffffff).u64(1n).bytes()],
      ["tensor offset past 2^53", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(1n).u64(0n).str("t").u32(1).u64(32n).u32(0).u64(2n ** 63n).bytes()],
      ["alignment 0", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(0n).u64(1n).str("general.alignment").u32(4).u32(0).bytes()],
      ["alignment 2^63 as u64", new HostileGGUF().raw(Buffer.from("GGUF")).u32(3).u64(0n).u64(1n).str("general.alignment").u32(10).u64(2n ** 63n).bytes()],
    ];
    for (const [what, bytes] of cases) {
      const r = await parseHostile(bytes, true);
      assert.ok(r instanceof GGUFError, `${what}: accepted`);
    }
  });

  it("reads files through readGGUFHeader with the same guarantees", async () => {
    const small = sources[0]!;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
        const path = join(dir, `case-${n++}.gguf`);
        const bytes = applyMutations(small.bytes, ms);
        await writeFile(path, bytes);
        const readBefore = bytesReadByProcess();
        try {
          const h = await readGGUFHeader(path);
          validateGGUFLayout(h, h.dataOffset + h.tensors.reduce((s, t) => Math.max(s, t.offset + t.size), 0));
        } catch (e) {
          if (!(e instanceof GGUFError)) throw e;
        }
        // Where the system counts it (Linux), the file was read at most twice over, as the
        // counting source above shows for bytes in memory.
        const readAfter = bytesReadByProcess();
        await rm(path, { force: true });
        if (readBefore !== undefined && readAfter !== undefined) {
          assert.ok(readAfter - readBefore <= 2 * bytes.length + 4096, `read ${readAfter - readBefore} bytes of a ${bytes.length}-byte file`);
        }
      }),
      runs(60),
    );
  });
});
