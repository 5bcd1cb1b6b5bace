// Element conversions to F16 and the chunked tensor stream, against an independent oracle: the
// nearest F16 found by searching every F16 value, ties to the even one. BF16 is checked for
// every bit pattern; F32 for every sign, exponent and top mantissa bits with each rounding case
// of the bits F16 drops.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertElements, encodeF32, f16BitsToF32, f32BitsToF16Bits } from "../src/create/convert/dtype.ts";
import { SourceFiles, tensorSource } from "../src/create/convert/tensor-data.ts";
import type { PlannedTensor } from "../src/create/convert/architectures.ts";

/** Every finite non-negative F16 value, ascending with its bit pattern (0x0000..0x7bff). */
const F16_VALUES = Float64Array.from({ length: 0x7c00 }, (_, h) => f16BitsToF32(h));

/** F16 bits nearest to `x`, ties to even, by search rather than bit manipulation. */
function nearestF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  // Halfway between the largest F16 (65504) and the next step (65536) rounds to "even": infinity.
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = F16_VALUES.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (F16_VALUES[mid]! <= a) lo = mid;
    else hi = mid - 1;
  }
  if (F16_VALUES[lo] === a || lo === F16_VALUES.length - 1) return sign | lo;
  const down = a - F16_VALUES[lo]!;
  const up = F16_VALUES[lo + 1]! - a;
  const h = down < up ? lo : up < down ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
  return sign | h;
}

function isF16NaN(h: number): boolean {
  return (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
}

function assertF16(got: number, x: number, what: string): void {
  const want = nearestF16(x);
  if (Number.isNaN(x)) assert.ok(isF16NaN(got), `${what}: NaN gives ${got.toString(16)}`);
  else assert.equal(got, want, `${what} (${x}): got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function f32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0]!;
}

function u16s(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
}

/** Every BF16 pattern, in order and then shuffled so that pairs sharing a 32-bit word mix kinds. */
function allBF16(): Uint16Array {
  const a = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const b = a.slice();
  let seed = 12345;
  for (let i = b.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [b[i], b[j]] = [b[j]!, b[i]!];
  }
  const out = new Uint16Array(a.length * 2);
  out.set(a);
  out.set(b, a.length);
  return out;
}

test("BF16 → F16 gives the nearest F16, ties to even, for every BF16 bit pattern", () => {
  const src = allBF16();
  const out = u16s(convertElements(new Uint8Array(src.slice().buffer), "BF16", "F16"));
  assert.equal(out.length, src.length);
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    assertF16(out[i]!, f32FromBits((b << 16) >>> 0), `BF16 0x${b.toString(16)} at ${i}`);
  }
});

test("BF16 → F16 edge values: normal range limits, subnormals, ties, overflow, infinities, NaN", () => {
  const cases: Array<[number, number, string]> = [
    [0x3f80, 0x3c00, "1"],
    [0xc000, 0xc000, "-2"],
    [0x0000, 0x0000, "+0"],
    [0x8000, 0x8000, "-0"],
    [0x3880, 0x0400, "2^-14, the smallest normal F16"],
    [0x387f, 0x03fc, "just below 2^-14 becomes subnormal, exactly"],
    [0x3380, 0x0001, "2^-24, the smallest subnormal"],
    [0x3300, 0x0000, "2^-25 is a tie between 0 and 2^-24: even is 0"],
    [0x33c0, 0x0002, "1.5 · 2^-24 is a tie: even is 2 · 2^-24"],
    [0x3340, 0x0001, "0.75 · 2^-24 rounds up"],
    [0x477f, 0x7bf8, "65280, the largest BF16 below 2^16"],
    [0x4780, 0x7c00, "2^16 overflows to infinity"],
    [0xc780, 0xfc00, "-2^16 overflows to -infinity"],
    [0x7f80, 0x7c00, "infinity"],
    [0xff80, 0xfc00, "-infinity"],
  ];
  const src = Uint16Array.from(cases, (c) => c[0]);
  const out = u16s(convertElements(new Uint8Array(src.buffer), "BF16", "F16"));
  cases.forEach(([, want, what], i) => assert.equal(out[i], want, what));
  for (const nan of [0x7fc0, 0xffc0, 0x7f81, 0x7fff]) {
    const h = u16s(convertElements(new Uint8Array(Uint16Array.of(nan).buffer), "BF16", "F16"))[0]!;
    assert.ok(isF16NaN(h), `BF16 0x${nan.toString(16)} stays NaN, got 0x${h.toString(16)}`);
    assert.equal(h & 0x8000, nan & 0x8000, "NaN keeps its sign");
  }
});

test("BF16 → F16 with an odd element count and a misaligned chunk", () => {
  const src = Uint16Array.of(0x3f80, 0x3300, 0x4780, 0x33c0, 0xbf80);
  const want = [0x3c00, 0x0000, 0x7c00, 0x0002, 0xbc00];
  assert.deepEqual([...u16s(convertElements(new Uint8Array(src.slice().buffer), "BF16", "F16"))], want);
  // Two bytes into a buffer: not 4-byte aligned, and the last element has no partner in a word.
  const bytes = new Uint8Array(2 + src.byteLength);
  bytes.set(new Uint8Array(src.buffer), 2);
  const out = convertElements(bytes.subarray(2), "BF16", "F16");
  assert.deepEqual([...u16s(out.byteOffset % 2 === 0 ? out : out.slice())], want);
});

/** Low halves of an F32 that cover each way of rounding away the 13 bits F16 drops. */
const LOW_HALVES = [
  0x0000, // exact
  0x0fff, // just below half a unit: down
  0x1000, // half, kept bit even: down
  0x1001, // just above half: up
  0x2000, // exact, kept bit odd
  0x3000, // half, kept bit odd: up
  0x1fff, // above half with the kept bit even: up
  0xe000, // exact, top bits set
  0xf000, // half, kept bits all ones: up with a carry
  0xffff, // above half, kept bits all ones: up with a carry
  0x5555,
  0xaaaa,
  0xe800, // with the top F16 exponent: between 65504 and the 65520 that rounds to infinity
];

function f32Samples(): Uint32Array {
  const out = new Uint32Array(65536 * LOW_HALVES.length);
  let k = 0;
  for (let hi = 0; hi < 65536; hi++) for (const lo of LOW_HALVES) out[k++] = ((hi << 16) | lo) >>> 0;
  return out;
}

test("F32 → F16 gives the nearest F16, ties to even, for every exponent and rounding case", () => {
  const bits = f32Samples();
  const fast = u16s(convertElements(new Uint8Array(bits.slice().buffer), "F32", "F16"));
  const encoded = u16s(encodeF32(new Float32Array(bits.slice().buffer), "F16"));
  assert.equal(fast.length, bits.length);
  for (let i = 0; i < bits.length; i++) {
    const x = f32FromBits(bits[i]!);
    const what = `F32 0x${bits[i]!.toString(16)}`;
    assertF16(fast[i]!, x, what);
    assert.equal(encoded[i], fast[i], `${what}: encodeF32 agrees`);
    assert.equal(f32BitsToF16Bits(bits[i]!), fast[i], `${what}: the scalar routine agrees`);
  }
});

test("F32 → F16 known values, and a misaligned chunk", () => {
  const xs = [1, -2, 0.1, 65504, 65520, 2 ** -24, 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -14, -Infinity, 65519.99];
  const want = [0x3c00, 0xc000, 0x2e66, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x3c00, 0x3c02, 0x0400, 0xfc00, 0x7bff];
  const src = new Uint8Array(Float32Array.from(xs).buffer);
  assert.deepEqual([...u16s(convertElements(src.slice(), "F32", "F16"))], want);
  const bytes = new Uint8Array(1 + src.length);
  bytes.set(src, 1);
  const out = convertElements(bytes.subarray(1), "F32", "F16");
  assert.deepEqual([...u16s(out.byteOffset % 2 === 0 ? out : out.slice())], want);
});

test("a tensor larger than several chunks streams the same bytes as converting it whole", async () => {
  const dir = await mkdtemp(join(tmpdir(), "corral-convert-dtype-"));
  // 8 heads of 300 rows of 1000 BF16 (4.8 MB) and 2500 rows of 700 F32 (7 MB): chunks of whole
  // rotary blocks, a last chunk shorter than the others, and rows that do not divide a chunk.
  const rng = (() => {
    let s = 7;
    return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  })();
  const bf16 = Uint16Array.from({ length: 2400 * 1000 }, () => rng() & 0xffff);
  const f32v = Float32Array.from({ length: 2500 * 700 }, () => f32FromBits(rng()));
  const path = join(dir, "t.bin");
  await writeFile(path, Buffer.concat([Buffer.alloc(6), new Uint8Array(bf16.buffer), new Uint8Array(f32v.buffer)]));
  const ref = (dtype: "BF16" | "F32", shape: number[], offset: number, size: number) => ({ name: `t.${dtype}`, dtype, shape, path, offset, size, file: "t.bin" });
  const tensors: PlannedTensor[] = [
    { name: "q", shape: [2400, 1000], type: "F16", parts: [ref("BF16", [2400, 1000], 6, bf16.byteLength)], permuteHeads: 8 },
    { name: "w", shape: [2500, 700], type: "F16", parts: [ref("F32", [2500, 700], 6 + bf16.byteLength, f32v.byteLength)] },
  ];

  const files = new SourceFiles();
  try {
    let read = 0;
    for (const t of tensors) {
      const got: Buffer[] = [];
      let chunks = 0;
      // Copied as they come, as a writer would write them: a chunk's memory is reused afterwards.
      for await (const c of tensorSource(t, files, (n) => (read += n)).chunks()) {
        got.push(Buffer.from(c));
        chunks++;
      }
      assert.ok(chunks > 2, `${t.name} streams in several chunks (${chunks})`);
      const out = u16s(new Uint8Array(Buffer.concat(got)));
      const rows = t.shape[0]!;
      const cols = t.shape[1]!;
      assert.equal(out.length, rows * cols);
      for (let r = 0; r < rows; r++) {
        // Rotary permutation: within each head's block, output row 2i+j is input row j·(n/2)+i.
        let from = r;
        if (t.permuteHeads) {
          const block = rows / t.permuteHeads;
          const base = r - (r % block);
          const k = r % block;
          from = base + (k % 2) * (block / 2) + (k >> 1);
        }
        for (let c = 0; c < cols; c++) {
          const i = from * cols + c;
          const x = t.name === "q" ? f32FromBits((bf16[i]! << 16) >>> 0) : f32v[i]!;
          const h = out[r * cols + c]!;
          if (Number.isNaN(x)) assert.ok(isF16NaN(h), `${t.name}[${r}, ${c}] NaN`);
          else if (h !== nearestF16(x)) assert.fail(`${t.name}[${r}, ${c}] = 0x${h.toString(16)}, want 0x${nearestF16(x).toString(16)} (${x})`);
        }
      }
    }
    assert.equal(read, bf16.byteLength + f32v.byteLength, "every source byte is counted once");
  } finally {
    await files.close();
  }
});
