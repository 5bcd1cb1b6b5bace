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
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return new Uint8Array(out.buffer);
}

/**
 * Converts a chunk of whole elements, reusing the chunk's memory for the result (the caller
 * gives the chunk up): narrowing conversions write each output element over input that has
 * already been read. Same-type chunks come back as they are; the common BF16 → F16 case is one
 * table lookup per element.
 */
export function convertElements(bytes: Uint8Array, from: SourceDType, to: OutDType): Uint8Array {
  if (from === to) return bytes;
  if (from === "BF16" && to === "F16") {
    const b = aligned(bytes, 2);
    const a = new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
    const t = bf16ToF16();
    for (let i = 0, n = a.length; i < n; i++) a[i] = t[a[i]!]!;
    return b;
  }
  if (from === "F32" && to === "F16") {
    const b = aligned(bytes, 4);
    const src = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
    const dst = new Uint16Array(b.buffer, b.byteOffset, src.length);
    for (let i = 0, n = src.length; i < n; i++) dst[i] = f32BitsToF16Bits(src[i]!);
    return b.subarray(0, src.length * 2);
  }
  return encodeF32(decodeToF32(bytes, from), to);
}
