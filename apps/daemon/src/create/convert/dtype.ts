// Element conversions between the checkpoint types we read (F32, F16, BF16) and the GGUF types
// we write (F32, F16). Half-precision results are rounded to nearest, ties to even, as NumPy and
// PyTorch do, so converted values match what llama.cpp's converter produces.

export type SourceDType = "F32" | "F16" | "BF16";
export type OutDType = "F32" | "F16";

export const DTYPE_BYTES: Readonly<Record<SourceDType | OutDType, number>> = { F32: 4, F16: 2, BF16: 2 };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of a binary32 given by its bits, rounded to nearest even. */
export function f32BitsToF16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) !== 0)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) !== 0)) half++;
  return sign | half;
}

export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  return f32BitsToF16Bits(u32[0]!);
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let bf16ToF16Table: Uint16Array | undefined;
let f16ToF32Table: Float32Array | undefined;

/** 128 KiB table: every BF16 bit pattern's F16 bits. */
function bf16ToF16(): Uint16Array {
  if (!bf16ToF16Table) {
    bf16ToF16Table = new Uint16Array(65536);
    for (let b = 0; b < 65536; b++) bf16ToF16Table[b] = f32BitsToF16Bits((b << 16) >>> 0);
  }
  return bf16ToF16Table;
}

function f16ToF32(): Float32Array {
  if (!f16ToF32Table) {
    f16ToF32Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16ToF32Table[h] = f16BitsToF32(h);
  }
  return f16ToF32Table;
}

function aligned(bytes: Uint8Array, elementSize: number): Uint8Array {
  // Typed-array views need aligned offsets; a misaligned chunk is copied once.
  return bytes.byteOffset % elementSize === 0 ? bytes : bytes.slice();
}

/*
 * Fast paths. Conversion is the one CPU-bound step of an import, so these avoid the per-element
 * branches of f32BitsToF16Bits for values that F16 represents as normal numbers, which is nearly
 * every weight, and hand everything else (values that become subnormal, zero or infinite, and
 * infinities and NaNs) to the exact routine above. Both give the same bits; the tests compare
 * them over every BF16 pattern and every F32 exponent and rounding case.
 */

/**
 * BF16 → F16 over a chunk, in place. A BF16 whose exponent lies in F16's normal range (magnitude
 * bits 0x3880..0x477f, 2^-14 ≤ |x| < 2^16) converts exactly: rebias the exponent by 127 − 15 and
 * widen the 7-bit mantissa to 10 bits. Both elements of a 32-bit word are done with one subtract
 * and one shift, since neither lane can borrow from or carry into the other inside that range.
 */
function bf16ToF16InPlace(words: Uint32Array, table: Uint16Array): void {
  for (let i = 0, n = words.length; i < n; i++) {
    const x = words[i]!;
    if ((((x & 0x7fff) - 0x3880) >>> 0) < 0xf00 && ((((x >>> 16) & 0x7fff) - 0x3880) >>> 0) < 0xf00) {
      words[i] = (((x & 0x7fff7fff) - 0x38003800) << 3) | (x & 0x80008000);
    } else {
      words[i] = table[x & 0xffff]! | (table[x >>> 16]! << 16);
    }
  }
}

/**
 * F32 bits → F16 bits. For |x| in [2^-14, 2^16) the F16 is the top 18 magnitude bits, rebiased,
 * after adding just under half an F16 unit plus the kept lowest bit: that rounds to nearest with
 * ties to even, and a carry out of the mantissa moves to the next exponent (or to infinity), as
 * it should. `dst` may alias the start of `src`: element i is written after elements 0..i are read.
 */
function f32BitsToF16Array(src: Uint32Array, dst: Uint16Array): void {
  for (let i = 0, n = src.length; i < n; i++) {
    const u = src[i]!;
    const a = u & 0x7fffffff;
    if (((a - 0x38800000) >>> 0) < 0x0f000000) {
      dst[i] = ((((a + 0xfff + ((a >>> 13) & 1)) >>> 13) - 0x1c000) | ((u >>> 16) & 0x8000));
    } else {
      dst[i] = f32BitsToF16Bits(u);
    }
  }
}

/** Decodes little-endian elements to F32 values. */
export function decodeToF32(bytes: Uint8Array, from: SourceDType): Float32Array {
  const b = aligned(bytes, DTYPE_BYTES[from]);
  if (from === "F32") return new Float32Array(b.buffer, b.byteOffset, b.length / 4).slice();
  const src = new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
  const out = new Float32Array(src.length);
  if (from === "F16") {
    const t = f16ToF32();
    for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
  } else {
    const o32 = new Uint32Array(out.buffer);
    for (let i = 0; i < src.length; i++) o32[i] = (src[i]! << 16) >>> 0;
  }
  return out;
}

/** Encodes F32 values as `to`, little-endian. */
export function encodeF32(values: Float32Array, to: OutDType): Uint8Array {
  if (to === "F32") return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  f32BitsToF16Array(new Uint32Array(values.buffer, values.byteOffset, values.length), out);
  return new Uint8Array(out.buffer);
}

/**
 * Converts a chunk of whole elements, reusing the chunk's memory for the result (the caller
 * gives the chunk up): narrowing conversions write each output element over input that has
 * already been read. Same-type chunks come back as they are.
 */
export function convertElements(bytes: Uint8Array, from: SourceDType, to: OutDType): Uint8Array {
  if (from === to) return bytes;
  if (from === "BF16" && to === "F16") {
    const b = aligned(bytes, 4);
    const t = bf16ToF16();
    const pairs = b.length >>> 2;
    bf16ToF16InPlace(new Uint32Array(b.buffer, b.byteOffset, pairs), t);
    if (b.length & 2) {
      // An odd element count leaves one element after the last whole word.
      const last = new Uint16Array(b.buffer, b.byteOffset + pairs * 4, 1);
      last[0] = t[last[0]!]!;
    }
    return b;
  }
  if (from === "F32" && to === "F16") {
    const b = aligned(bytes, 4);
    const src = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
    f32BitsToF16Array(src, new Uint16Array(b.buffer, b.byteOffset, src.length));
    return b.subarray(0, src.length * 2);
  }
  return encodeF32(decodeToF32(bytes, from), to);
}
