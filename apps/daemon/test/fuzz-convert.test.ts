// Property-based tests of the checkpoint readers on hostile files: safetensors headers with huge or
// negative lengths and offsets, PyTorch zips that are bombs (declared sizes far beyond the data,
// overlapping members, ZIP64 fields pointing anywhere, truncated records) and pickles with foreign
// globals, unknown opcodes, cycles and deep nesting. Each case ends in a result or a ConvertError
// that names the file, never another exception and never an allocation beyond the file's own size.
// No clock bounds a case: one that never ends is ended by the test runner's overall limit, and
// that the readers' work grows linearly with their input is convert-work.test.ts.
// FUZZ_SEED=<n> replays a failure (fast-check prints the seed and path); FUZZ_RUNS=<n> scales it.

import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { fixturesDir } from "../../../test/fixtures.ts";
import { ConvertError } from "../src/create/convert/errors.ts";
import { loadStateDict } from "../src/create/convert/pickle.ts";
import { readSafetensors } from "../src/create/convert/safetensors.ts";
import { readTorchCheckpoint } from "../src/create/convert/torch.ts";
import { readZipDirectory } from "../src/create/convert/zip.ts";
import { op, stateDictPickle, u32le, uni } from "./support/torch-pickle.ts";
import { zip, type ZipEntry } from "./support/zip.ts";

function runs(n: number): fc.Parameters<unknown> {
  const seed = process.env["FUZZ_SEED"];
  return { numRuns: Math.max(1, Math.round(Number(process.env["FUZZ_RUNS"] ?? 1) * n)), ...(seed ? { seed: Number(seed) } : {}) };
}

/** Buffers a case may leave allocated: far below the 100-256 MB a declared size could ask for. */
const CASE_BYTES = 32 * 1024 * 1024;

/** Runs one hostile case: only ConvertError may escape, and only within the memory bound. */
async function hostile<T>(file: string, fn: () => Promise<T> | T): Promise<T | ConvertError> {
  const memBefore = process.memoryUsage().arrayBuffers;
  let out: T | ConvertError;
  try {
    out = await fn();
  } catch (e) {
    if (!(e instanceof ConvertError)) throw e;
    assert.ok(e.message.startsWith(`${file}: `), `the error names the file: ${e.message}`);
    out = e;
  }
  const grew = process.memoryUsage().arrayBuffers - memBefore;
  assert.ok(grew < CASE_BYTES, `allocated ${grew} bytes of buffers`);
  return out;
}

const HOSTILE_U64 = [0n, 1n, 8n, 0x7fffffffn, 0xffffffffn, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
const HOSTILE_U32 = [0, 1, 30, 46, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const HOSTILE_NUMBERS = [-1, -(2 ** 53), 0.5, 1e308, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 4, 0];

type Mutation = { at: number; kind: "flip" | "byte" | "u32" | "u64" | "insert" | "truncate"; value: number; big: bigint; bytes: number[] };
const mutation = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  kind: fc.constantFrom("flip", "byte", "u32", "u64", "insert", "truncate"),
  value: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...HOSTILE_U32)),
  big: fc.constantFrom(...HOSTILE_U64),
  bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }),
});

function mutate(original: Buffer, ms: Array<Omit<Mutation, "at"> & { at: number }>): Buffer {
  let b = Buffer.from(original);
  for (const m of ms) {
    const at = Math.min(b.length, Math.floor(m.at * b.length));
    if (m.kind === "flip" && at < b.length) b[at] = b[at]! ^ (1 << (m.value % 8));
    else if (m.kind === "byte" && at < b.length) b[at] = m.value & 0xff;
    else if (m.kind === "u32" && at + 4 <= b.length) b.writeUInt32LE(m.value >>> 0, at);
    else if (m.kind === "u64" && at + 8 <= b.length) b.writeBigUInt64LE(m.big, at);
    else if (m.kind === "insert") b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
    else if (m.kind === "truncate") b = b.subarray(0, at);
  }
  return b;
}

// ---- pickles ----

const FOREIGN_GLOBALS = ["os\nsystem", "builtins\neval", "builtins\nexec", "subprocess\nPopen", "posix\nsystem", "torch\nload", "torch._utils\n_rebuild_device_tensor_from_numpy", "collections\ndefaultdict", "__builtin__\nopen", "numpy.core.multiarray\n_reconstruct", "torch\nFloatStorage\x00"];

// Opcode fragments: every opcode byte with plausible (and implausible) arguments.
const opcodeFragment = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => op([b])) },
  { weight: 3, arbitrary: fc.constantFrom("(", ")", "]", "}", "t", "s", "u", "a", "e", "R", "b", "N", "\x88", "\x89", "\x85", "\x86", "\x87", "\x94", "2", "0", "1", "Q", ".").map((s) => op(s)) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(0x4a, 0x4b, 0x4d, 0x71, 0x72, 0x68, 0x6a, 0x80), fc.integer({ min: 0, max: 0xffffffff })).map(([o, n]) => op([o], u32le(n))) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(0x58, 0x42, 0x54), fc.constantFrom(...HOSTILE_U32), fc.uint8Array({ maxLength: 8 })).map(([o, n, b]) => op([o], u32le(n), Buffer.from(b))) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(0x8d, 0x8e, 0x95, 0x96), fc.constantFrom(...HOSTILE_U64)).map(([o, n]) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(n); return op([o], b); }) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 12 })).map(([n, b]) => op([0x8a, n], Buffer.from(b))) },
  { weight: 2, arbitrary: fc.string({ maxLength: 10 }).map((s) => op([0x8c, Buffer.byteLength(s) & 0xff], Buffer.from(s))) },
  { weight: 2, arbitrary: fc.constantFrom(...FOREIGN_GLOBALS, "collections\nOrderedDict", "torch._utils\n_rebuild_tensor_v2", "torch\nFloatStorage", "torch\nHalfStorage").map((g) => op("c", g, "\n")) },
  { weight: 1, arbitrary: fc.constantFrom(...FOREIGN_GLOBALS).map((g) => { const [m, n] = g.split("\n") as [string, string]; return op(uni(m), uni(n), [0x93]); }) },
  { weight: 1, arbitrary: fc.constant(stateDictPickle([{ name: "w", shape: [2, 2] }]).subarray(0, -1)) },
);

// ---- zips ----

function checkpoint(): Buffer {
  const shape = [2, 3];
  return zip([
    { name: "archive/data.pkl", data: stateDictPickle([{ name: "w", shape }]) },
    { name: "archive/byteorder", data: Buffer.from("little") },
    { name: "archive/data/0", data: Buffer.alloc(4 * 6) },
    { name: "archive/version", data: Buffer.from("3\n") },
  ]);
}

function zip64Extra(values: bigint[], declaredLength?: number): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(1, 0);
  b.writeUInt16LE(declaredLength ?? 8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(v, 4 + 8 * i));
  return b;
}

describe("checkpoint readers on hostile files", () => {
  let dir = "";
  let n = 0;
  const file = async (bytes: Uint8Array): Promise<string> => {
    const p = join(dir, `case-${n++}`);
    await writeFile(p, bytes);
    return p;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-fuzz-convert-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe("safetensors", () => {
    const tensorEntry = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom("F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "Q4", ""), fc.jsonValue({ maxDepth: 0 })),
        shape: fc.oneof(fc.array(fc.oneof(fc.nat({ max: 8 }), fc.constantFrom(...HOSTILE_NUMBERS)), { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
        data_offsets: fc.oneof(fc.tuple(fc.oneof(fc.nat({ max: 64 }), fc.constantFrom(...HOSTILE_NUMBERS)), fc.oneof(fc.nat({ max: 64 }), fc.constantFrom(...HOSTILE_NUMBERS))), fc.jsonValue({ maxDepth: 1 })),
      },
      { requiredKeys: [] },
    );
    const header = fc.oneof(
      { weight: 5, arbitrary: fc.dictionary(fc.constantFrom("w", "b", "__metadata__", "__proto__", "constructor", "model.layers.0.weight"), fc.oneof(tensorEntry, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 }).map((o) => JSON.stringify(o)) },
      { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
      { weight: 1, arbitrary: fc.nat({ max: 20000 }).map((k) => "[".repeat(k) + "]".repeat(k)) },
    );
    const declaredLength = fc.option(fc.constantFrom(...HOSTILE_U64), { nil: undefined, freq: 3 });

    it("reads a header or refuses it with a ConvertError", async () => {
      await fc.assert(
        fc.asyncProperty(header, declaredLength, fc.nat({ max: 64 }), async (json, declared, dataBytes) => {
          const h = Buffer.from(json, "utf8");
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(declared ?? BigInt(h.length));
          const path = await file(Buffer.concat([len, h, Buffer.alloc(dataBytes)]));
          const r = await hostile("m.safetensors", () => readSafetensors(path, "m.safetensors"));
          if (r instanceof ConvertError) return;
          for (const t of r.tensors) {
            assert.ok(Number.isSafeInteger(t.offset) && t.offset >= 8 && Number.isSafeInteger(t.size) && t.size >= 0, JSON.stringify(t));
            assert.ok(t.offset + t.size <= 8 + h.length + dataBytes, "a tensor lies inside the file");
          }
        }),
        runs(400),
      );
    });

    it("refuses mutations of a real safetensors file", async () => {
      const real = await readFile(join(fixturesDir, "convert", "tiny-random-llama-2-hf", "model.safetensors"));
      const headerEnd = 8 + Number(real.readBigUInt64LE(0));
      const head = real.subarray(0, headerEnd + 4096);
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.boolean(), async (ms, onHeader) => {
          // Mutations land in the 8-byte length and the JSON header most of the time.
          const scaled = onHeader ? ms.map((m) => ({ ...m, at: (m.at * headerEnd) / head.length })) : ms;
          const path = await file(mutate(head, scaled));
          await hostile("m.safetensors", () => readSafetensors(path, "m.safetensors"));
        }),
        runs(150),
      );
    });
  });

  describe("PyTorch zip checkpoints", () => {
    it("reads the unmutated checkpoint (the baseline the mutations start from)", async () => {
      const tensors = await readTorchCheckpoint(await file(checkpoint()), "model.pt");
      assert.deepEqual(tensors.map((t) => [t.name, t.shape, t.size]), [["w", [2, 3], 24]]);
    });

    it("refuses mutated checkpoints with a ConvertError", async () => {
      const base = checkpoint();
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (ms) => {
          const path = await file(mutate(base, ms));
          const r = await hostile("model.pt", () => readTorchCheckpoint(path, "model.pt"));
          if (r instanceof ConvertError) return;
          for (const t of r) assert.ok(t.offset >= 0 && t.size >= 0 && t.offset + t.size <= base.length + 64, JSON.stringify(t));
        }),
        runs(500),
      );
    });

    it("refuses zip bombs: huge declared sizes, overlapping members, ZIP64 fields pointing anywhere", async () => {
      const pkl = stateDictPickle([{ name: "w", shape: [2, 2] }]);
      const entry = fc.record({
        name: fc.constantFrom("archive/data.pkl", "archive/data/0", "data.pkl", "../../x/data.pkl", "archive/data/0\0"),
        data: fc.oneof(fc.constant(pkl), fc.constant(Buffer.alloc(16)), fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b))),
        method: fc.option(fc.constantFrom(0, 8, 12, 0xffff), { nil: undefined }),
        size: fc.option(fc.constantFrom(...HOSTILE_U32, 200 * 1024 * 1024), { nil: undefined }),
        compressedSize: fc.option(fc.constantFrom(...HOSTILE_U32), { nil: undefined }),
        localOffset: fc.option(fc.constantFrom(0, 1, 30, ...HOSTILE_U32), { nil: undefined }),
        extra: fc.option(
          fc.oneof(
            fc.array(fc.constantFrom(...HOSTILE_U64), { minLength: 0, maxLength: 3 }).map((v) => zip64Extra(v)),
            fc.tuple(fc.array(fc.constantFrom(...HOSTILE_U64), { maxLength: 2 }), fc.constantFrom(0, 4, 24, 0xffff)).map(([v, l]) => zip64Extra(v, l)),
          ),
          { nil: undefined },
        ),
      });
      const eocd = fc.record({ count: fc.constantFrom(0, 1, 2, 0xffff), cdSize: fc.constantFrom(0, 46, 0xffffffff, 64 * 1024 * 1024 + 1), cdOffset: fc.constantFrom(0, 1, 0xffffffff) }, { requiredKeys: [] });
      await fc.assert(
        fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 4 }), eocd, async (entries, end) => {
          const path = await file(zip(entries as ZipEntry[], end));
          await hostile("model.pt", () => readTorchCheckpoint(path, "model.pt"));
          const fh = await open(path, "r");
          try {
            await hostile("model.pt", () => readZipDirectory(fh, "model.pt"));
          } finally {
            await fh.close();
          }
        }),
        runs(500),
      );
    });

    it("names the problem for the classic bombs", async () => {
      const pkl = stateDictPickle([{ name: "w", shape: [2, 2] }]);
      const cases: Array<[string, Buffer, RegExp]> = [
        ["a stored data.pkl declaring 200 MB", zip([{ name: "archive/data.pkl", data: pkl, size: 200 * 1024 * 1024 }]), /is stored but declares 209715200 bytes/],
        ["two members sharing bytes", zip([{ name: "archive/data.pkl", data: pkl }, { name: "archive/data/0", data: Buffer.alloc(16), localOffset: 0 }]), /overlap/],
        ["a ZIP64 size field cut short", zip([{ name: "archive/data.pkl", data: pkl, size: 0xffffffff, compressedSize: 0xffffffff, extra: zip64Extra([5n], 8) }]), /ZIP64 field too short/],
        ["a local header past the end", zip([{ name: "archive/data.pkl", data: pkl, localOffset: 0xffffffff, extra: zip64Extra([2n ** 62n]) }]), /outside the file/],
        ["a central directory past the end", zip([{ name: "archive/data.pkl", data: pkl }], { cdSize: 0xfffffff0 }), /does not fit the file/],
      ];
      for (const [what, bytes, re] of cases) {
        const path = await file(bytes);
        await assert.rejects(readTorchCheckpoint(path, "model.pt"), (e: unknown) => e instanceof ConvertError && re.test(e.message), what);
      }
    });
  });

  describe("pickles", () => {
    it("interprets any opcode stream without calling anything: a state dict or a ConvertError", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opcodeFragment, { maxLength: 24 }), fc.boolean(), async (parts, proto) => {
          const data = Buffer.concat([...(proto ? [op([0x80, 2])] : []), ...parts]);
          const r = await hostile("x.pt", () => loadStateDict(data, "x.pt"));
          if (r instanceof ConvertError) return;
          for (const [name, t] of r) {
            assert.equal(typeof name, "string");
            assert.ok(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) && Number.isSafeInteger(t.storageOffset) && t.storageOffset >= 0, JSON.stringify(t));
          }
        }),
        runs(3000),
      );
    });

    it("refuses every global outside the state-dict allowlist, naming it", () => {
      fc.assert(
        fc.property(fc.constantFrom(...FOREIGN_GLOBALS), fc.boolean(), (g, viaStack) => {
          const [m, n] = g.split("\n") as [string, string];
          const data = viaStack ? op([0x80, 4], uni(m), uni(n), [0x93], ")R.") : op([0x80, 2], "c", m, "\n", n, "\n)R.");
          assert.throws(() => loadStateDict(data, "x.pt"), (e: unknown) => e instanceof ConvertError && e.message.includes(`refusing pickle global "${m}.${n}"`));
        }),
        runs(100),
      );
    });

    it("survives cycles, deep nesting, shared dicts and huge lists", async () => {
      const cycle = op("}q\x00", [0x8c, 1], "k", "h\x00s.");
      const deep = op(...Array.from({ length: 100_000 }, () => op("}", [0x8c, 1], "k")), "}", "s".repeat(100_000), ".");
      // 40 levels of a dict whose two keys both hold the level below: 2^40 paths if walked naively.
      const shared = op("}", [0x94], ...Array.from({ length: 40 }, (_, i) => op("}", [0x8c, 1], "a", [0x68, i], "s", [0x8c, 1], "b", [0x68, i], "s", [0x94])), ".");
      const appends = op("](", "N".repeat(300_000), "e.");
      const unknownOpcode = op([0x80, 2, 0xff]);
      for (const [what, data] of [["cycle", cycle], ["deep", deep], ["shared", shared], ["appends", appends], ["unknown opcode", unknownOpcode]] as const) {
        const r = await hostile("x.pt", () => loadStateDict(data, "x.pt"));
        assert.ok(r instanceof ConvertError, `${what}: accepted`);
      }
    });
  });
});
