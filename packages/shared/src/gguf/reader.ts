// Streaming GGUF header reader (docs/daemon.md, "GGUF files"). Reads the metadata and tensor
// infos through a small buffer and never touches the tensor data. Every length and count is checked
// against the bytes that remain before anything is allocated for it, so a hostile header costs at
// most what the file itself holds.

import { open } from "node:fs/promises";
import {
  GGUFValueType,
  TensorShapeError,
  fixedValueSize,
  ggmlType,
  isGGUFValueType,
  tensorByteSize,
  valueTypeName,
} from "./types.ts";

export type GGUFValue = number | bigint | boolean | string | GGUFValue[];

export interface GGUFKV {
  key: string;
  type: GGUFValueType;
  value: GGUFValue;
  /** Element type when `type` is ARRAY. */
  arrayType?: GGUFValueType;
}

export interface GGUFTensorInfo {
  name: string;
  dims: number[];
  /** ggml type id. */
  type: number;
  /** Relative to the start of the data section. */
  offset: number;
  /** Bytes, computed from type and dims. */
  size: number;
}

export interface GGUFHeader {
  version: number;
  littleEndian: boolean;
  kv: Map<string, GGUFKV>;
  tensors: GGUFTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section: headerSize rounded up to the alignment. */
  dataOffset: number;
  /** Bytes up to the end of the last tensor info. */
  headerSize: number;
}

/** Anything header bytes can be read from at an offset: a file, an HTTP range, a buffer. */
export interface GGUFByteSource {
  readonly size: number;
  /** Returns up to `length` bytes at `offset` (fewer only at the end of the source). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export class GGUFError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly offset?: number,
  ) {
    super(`${file}: invalid GGUF: ${problem}${offset === undefined ? "" : ` (at byte ${offset})`}`);
    this.name = "GGUFError";
  }
}

export const GGUF_DEFAULT_ALIGNMENT = 32;
const GGUF_MAGIC_LE = 0x46554747; // bytes "GGUF"
const GGUF_MAGIC_SWAPPED = 0x47475546; // bytes "FUGG": Ollama's big-endian marker
const MAX_NESTING = 8;
const MAX_DIMS = 4;
/** A single metadata string above this is refused even if the file is big enough to hold it. */
const MAX_STRING_BYTES = 256 * 1024 * 1024;
const CHUNK = 256 * 1024;

// Array element types for every array this module produced or was told about, so that nested
// arrays can be written back with the element types they were read with.
const arrayItemTypes = new WeakMap<GGUFValue[], GGUFValueType>();

/** Tags an array value with its element type (needed to write nested arrays); returns the array. */
export function ggufArray<T extends GGUFValue[]>(items: T, itemType: GGUFValueType): T {
  arrayItemTypes.set(items, itemType);
  return items;
}

/** The element type an array was read with or tagged with by ggufArray. */
export function arrayItemType(items: GGUFValue[]): GGUFValueType | undefined {
  return arrayItemTypes.get(items);
}

// ignoreBOM: a token that is exactly U+FEFF must survive (Llama vocabularies have one).
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Buffered, bounds-checked cursor over a byte source. */
class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buf.buffer);
  private bufStart = 0;
  pos = 0;
  littleEndian = true;

  constructor(
    private readonly src: GGUFByteSource,
    readonly file: string,
  ) {}

  get size(): number {
    return this.src.size;
  }

  get remaining(): number {
    return this.src.size - this.pos;
  }

  fail(problem: string, offset: number = this.pos): never {
    throw new GGUFError(this.file, problem, offset);
  }

  /** Makes [pos, pos+n) available in the buffer, or fails as truncated. */
  async need(n: number, what: string): Promise<void> {
    const off = this.pos - this.bufStart;
    if (off >= 0 && off + n <= this.buf.length) return;
    if (n > this.remaining) {
      this.fail(`file is truncated: ${what} needs ${n} bytes but the file ends at byte ${this.src.size}`);
    }
    const want = Math.min(Math.max(n, CHUNK), this.remaining);
    const got = await this.src.read(this.pos, want);
    if (got.length < n) {
      this.fail(`file is truncated: ${what} needs ${n} bytes but only ${got.length} could be read`);
    }
    this.buf = got;
    this.view = new DataView(got.buffer, got.byteOffset, got.byteLength);
    this.bufStart = this.pos;
  }

  /** Bytes buffered from pos onwards. */
  get buffered(): number {
    return this.bufStart + this.buf.length - this.pos;
  }

  private at(n: number): number {
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }

  u8(): number {
    return this.view.getUint8(this.at(1));
  }
  i8(): number {
    return this.view.getInt8(this.at(1));
  }
  u16(): number {
    return this.view.getUint16(this.at(2), this.littleEndian);
  }
  i16(): number {
    return this.view.getInt16(this.at(2), this.littleEndian);
  }
  u32(): number {
    return this.view.getUint32(this.at(4), this.littleEndian);
  }
  i32(): number {
    return this.view.getInt32(this.at(4), this.littleEndian);
  }
  f32(): number {
    return this.view.getFloat32(this.at(4), this.littleEndian);
  }
  f64(): number {
    return this.view.getFloat64(this.at(8), this.littleEndian);
  }
  u64(): bigint {
    return this.view.getBigUint64(this.at(8), this.littleEndian);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.at(8), this.littleEndian);
  }
  bytes(n: number): Uint8Array {
    const o = this.at(n);
    return this.buf.subarray(o, o + n);
  }
}

function bigToValue(v: bigint): number | bigint {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
}

class HeaderParser {
  /** v1 stores counts and lengths as u32; v2 and later as u64. */
  private wideSizes = true;

  constructor(private readonly c: Cursor) {}

  /** A count or length field, checked to be a safe integer. */
  private async size(what: string): Promise<number> {
    const start = this.c.pos;
    if (!this.wideSizes) {
      await this.c.need(4, what);
      return this.c.u32();
    }
    await this.c.need(8, what);
    const v = this.c.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.c.fail(`${what} ${v} is too large`, start);
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const start = this.c.pos;
    const len = await this.size(`length of ${what}`);
    if (len > this.c.remaining) {
      this.c.fail(`${what} has length ${len} but only ${this.c.remaining} bytes remain in the file`, start);
    }
    if (len > MAX_STRING_BYTES) this.c.fail(`${what} has length ${len}, more than the ${MAX_STRING_BYTES} allowed`, start);
    await this.c.need(len, what);
    return decoder.decode(this.c.bytes(len));
  }

  /**
   * Decodes a string without awaiting when it is entirely in the buffer (the common case for
   * vocabularies of many short tokens); undefined otherwise, and then nothing is consumed.
   */
  private bufferedString(): string | undefined {
    const c = this.c;
    const lenSize = this.wideSizes ? 8 : 4;
    if (c.buffered < lenSize) return undefined;
    const start = c.pos;
    const len = this.wideSizes ? Number(c.u64()) : c.u32();
    if (len > c.buffered) {
      c.pos = start;
      return undefined;
    }
    return decoder.decode(c.bytes(len));
  }

  private async valueType(what: string): Promise<GGUFValueType> {
    const start = this.c.pos;
    await this.c.need(4, what);
    const t = this.c.u32();
    if (!isGGUFValueType(t)) this.c.fail(`${what} has unknown value type ${t}`, start);
    return t;
  }

  /** Smallest encoding of one value of type t, used to bound element counts. */
  private minSize(t: GGUFValueType): number {
    if (t === GGUFValueType.STRING) return this.wideSizes ? 8 : 4;
    if (t === GGUFValueType.ARRAY) return 4 + (this.wideSizes ? 8 : 4);
    return fixedValueSize(t) ?? 1;
  }

  async value(t: GGUFValueType, what: string, depth: number): Promise<GGUFValue> {
    const c = this.c;
    switch (t) {
      case GGUFValueType.STRING:
        return this.string(what);
      case GGUFValueType.ARRAY:
        return this.array(what, depth);
      default: {
        const n = fixedValueSize(t) ?? 0;
        await c.need(n, what);
        return this.fixed(t);
      }
    }
  }

  /** Decodes a fixed-size value already in the buffer. */
  private fixed(t: GGUFValueType): number | bigint | boolean {
    const c = this.c;
    switch (t) {
      case GGUFValueType.UINT8: return c.u8();
      case GGUFValueType.INT8: return c.i8();
      case GGUFValueType.UINT16: return c.u16();
      case GGUFValueType.INT16: return c.i16();
      case GGUFValueType.UINT32: return c.u32();
      case GGUFValueType.INT32: return c.i32();
      case GGUFValueType.FLOAT32: return c.f32();
      case GGUFValueType.FLOAT64: return c.f64();
      case GGUFValueType.UINT64: return bigToValue(c.u64());
      case GGUFValueType.INT64: return bigToValue(c.i64());
      // Any non-zero byte is true, as in llama.cpp and Ollama.
      default: return c.u8() !== 0;
    }
  }

  private async array(what: string, depth: number): Promise<GGUFValue[]> {
    const c = this.c;
    if (depth >= MAX_NESTING) c.fail(`${what} nests arrays more than ${MAX_NESTING} deep`);
    const itemType = await this.valueType(`element type of ${what}`);
    const countAt = c.pos;
    const count = await this.size(`element count of ${what}`);
    const min = this.minSize(itemType);
    if (count * min > c.remaining) {
      c.fail(`${what} claims ${count} ${valueTypeName(itemType)} elements, more than the ${c.remaining} remaining bytes can hold`, countAt);
    }
    const out: GGUFValue[] = [];
    const fixed = fixedValueSize(itemType);
    if (fixed !== undefined) {
      // Fixed-size elements are decoded a buffer-full at a time.
      const perChunk = Math.max(1, Math.floor(CHUNK / fixed));
      for (let i = 0; i < count; ) {
        const n = Math.min(perChunk, count - i);
        await c.need(n * fixed, what);
        for (let j = 0; j < n; j++) out.push(this.fixed(itemType));
        i += n;
      }
    } else if (itemType === GGUFValueType.STRING) {
      for (let i = 0; i < count; i++) out.push(this.bufferedString() ?? (await this.string(`${what}[${i}]`)));
    } else {
      for (let i = 0; i < count; i++) out.push(await this.value(itemType, `${what}[${i}]`, depth + 1));
    }
    arrayItemTypes.set(out, itemType);
    return out;
  }

  async parse(): Promise<GGUFHeader> {
    const c = this.c;
    if (c.size < 4) c.fail(`file is truncated: it is ${c.size} bytes long, too short for the "GGUF" magic`, 0);
    await c.need(Math.min(c.size, 8), "magic and version");
    const magicBytes = c.bytes(4);
    const magic = new DataView(magicBytes.buffer, magicBytes.byteOffset, 4).getUint32(0, true);
    if (magic === GGUF_MAGIC_SWAPPED) {
      c.littleEndian = false;
    } else if (magic !== GGUF_MAGIC_LE) {
      c.fail(`bad magic: found ${describeMagic(magicBytes)}, expected "GGUF"`, 0);
    }

    const versionAt = c.pos;
    await c.need(4, "version");
    let version = c.u32();
    if (magic === GGUF_MAGIC_LE && !isKnownVersion(version)) {
      // Big-endian files written by llama.cpp keep the "GGUF" magic bytes and swap everything else.
      const swapped = byteSwap32(version);
      if (isKnownVersion(swapped)) {
        c.littleEndian = false;
        version = swapped;
      }
    }
    if (!isKnownVersion(version)) c.fail(`unsupported version ${version} (expected 1, 2 or 3)`, versionAt);
    this.wideSizes = version >= 2;

    const countsAt = c.pos;
    const nTensors = await this.size("tensor count");
    const nKV = await this.size("metadata count");
    // Each KV takes at least a key length, a type and a 1-byte value; each tensor info at least
    // a name length, n_dims, a type and an offset.
    const minKV = (this.wideSizes ? 8 : 4) + 4 + 1;
    const minTensor = (this.wideSizes ? 8 : 4) + 4 + 4 + 8;
    if (nKV * minKV + nTensors * minTensor > c.remaining) {
      c.fail(`header claims ${nTensors} tensors and ${nKV} metadata entries, more than the ${c.remaining} remaining bytes can hold`, countsAt);
    }

    const kv = new Map<string, GGUFKV>();
    for (let i = 0; i < nKV; i++) {
      const keyAt = c.pos;
      const key = await this.string(`key of metadata entry ${i}`);
      if (kv.has(key)) c.fail(`duplicate metadata key ${JSON.stringify(key)}`, keyAt);
      const type = await this.valueType(`metadata ${JSON.stringify(key)}`);
      const value = await this.value(type, `metadata ${JSON.stringify(key)}`, 0);
      const entry: GGUFKV = { key, type, value };
      if (type === GGUFValueType.ARRAY) {
        const it = arrayItemTypes.get(value as GGUFValue[]);
        if (it !== undefined) entry.arrayType = it;
      }
      kv.set(key, entry);
    }

    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const alignKV = kv.get("general.alignment");
    if (alignKV) {
      const a = alignKV.value;
      const n = typeof a === "number" && Number.isSafeInteger(a) ? a : NaN;
      if (!isPowerOfTwo(n)) {
        c.fail(`general.alignment is ${String(a)}; it must be a power of two`);
      }
      alignment = n;
    }

    const tensors: GGUFTensorInfo[] = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const infoAt = c.pos;
      const name = await this.string(`name of tensor ${i}`);
      if (names.has(name)) c.fail(`duplicate tensor name ${JSON.stringify(name)}`, infoAt);
      names.add(name);
      const label = `tensor ${JSON.stringify(name)}`;
      await c.need(4, `dimension count of ${label}`);
      const nDimsAt = c.pos;
      const nDims = c.u32();
      if (nDims > MAX_DIMS) c.fail(`${label} has ${nDims} dimensions (at most ${MAX_DIMS} are allowed)`, nDimsAt);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(await this.size(`dimension ${d} of ${label}`));
      await c.need(4 + 8, `type and offset of ${label}`);
      const typeAt = c.pos;
      const type = c.u32();
      if (!ggmlType(type)) c.fail(`${label} has unknown ggml type ${type}`, typeAt);
      const offsetAt = c.pos;
      const offset64 = c.u64();
      if (offset64 > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`${label} has data offset ${offset64}, which is too large`, offsetAt);
      let size: number;
      try {
        size = tensorByteSize(type, dims);
      } catch (err) {
        if (err instanceof TensorShapeError) c.fail(`${label} has shape [${dims.join(", ")}]: ${err.message}`, infoAt);
        throw err;
      }
      tensors.push({ name, dims, type, offset: Number(offset64), size });
    }

    const headerSize = c.pos;
    return {
      version,
      littleEndian: c.littleEndian,
      kv,
      tensors,
      alignment,
      dataOffset: alignUp(headerSize, alignment),
      headerSize,
    };
  }
}

function isKnownVersion(v: number): boolean {
  return v === 1 || v === 2 || v === 3;
}

function byteSwap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function describeMagic(b: Uint8Array): string {
  const printable = Array.from(b).every((x) => x >= 0x20 && x < 0x7f);
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
  return printable ? `${JSON.stringify(String.fromCharCode(...b))} (bytes ${hex})` : `bytes ${hex}`;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export function alignUp(n: number, alignment: number): number {
  const r = n % alignment;
  return r === 0 ? n : n + alignment - r;
}

export interface ParseOptions {
  /** Name used in error messages. */
  name?: string;
  /** Also check the tensor data layout against the source size (validateGGUFLayout). */
  validateLayout?: boolean;
}

function bufferSource(bytes: Uint8Array): GGUFByteSource {
  return {
    size: bytes.length,
    read: async (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)),
  };
}

/**
 * Parses a GGUF header from bytes in memory or any ranged source. A buffer may be just a prefix of
 * the file; only leave `validateLayout` off then (the default here).
 */
export async function parseGGUFHeader(source: Uint8Array | GGUFByteSource, opts: ParseOptions = {}): Promise<GGUFHeader> {
  const src = source instanceof Uint8Array ? bufferSource(source) : source;
  const name = opts.name ?? "<memory>";
  const header = await new HeaderParser(new Cursor(src, name)).parse();
  if (opts.validateLayout) validateGGUFLayout(header, src.size, name);
  return header;
}

/**
 * Reads the header of a GGUF file through buffered reads of a file handle: the tensor data is never
 * read. By default also checks that every tensor's data lies inside the file (validateGGUFLayout).
 */
export async function readGGUFHeader(path: string, opts: { validateLayout?: boolean } = {}): Promise<GGUFHeader> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const src: GGUFByteSource = {
      size,
      read: async (offset, length) => {
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      },
    };
    const header = await new HeaderParser(new Cursor(src, path)).parse();
    if (opts.validateLayout ?? true) validateGGUFLayout(header, size, path);
    return header;
  } finally {
    await fh.close();
  }
}

/**
 * Checks that every tensor's data [dataOffset+offset, +size) lies inside a file of `fileSize`
 * bytes, starts on the alignment, and overlaps no other tensor. A file without tensors may end
 * right after its header (llama.cpp's vocab-only files do).
 */
export function validateGGUFLayout(h: GGUFHeader, fileSize: number, name = "<memory>"): void {
  const fail = (problem: string, offset?: number): never => {
    throw new GGUFError(name, problem, offset);
  };
  const byOffset = [...h.tensors].sort((a, b) => a.offset - b.offset || a.size - b.size);
  let prev: GGUFTensorInfo | undefined;
  for (const t of byOffset) {
    const start = h.dataOffset + t.offset;
    if (t.offset % h.alignment !== 0) {
      fail(`tensor ${JSON.stringify(t.name)} has data offset ${t.offset}, which is not a multiple of the alignment ${h.alignment}`);
    }
    if (start + t.size > fileSize) {
      fail(`tensor ${JSON.stringify(t.name)} data [${start}, ${start + t.size}) extends past the end of the file (${fileSize} bytes); the file is truncated or the offset is wrong`);
    }
    if (prev && t.size > 0 && prev.offset + prev.size > t.offset) {
      fail(`tensor ${JSON.stringify(t.name)} data at offset ${t.offset} overlaps tensor ${JSON.stringify(prev.name)} (offset ${prev.offset}, ${prev.size} bytes)`);
    }
    if (t.size > 0) prev = t;
  }
}

// ---- getters ----

/** The value of a string KV, or undefined when missing or of another type. */
export function ggufString(h: GGUFHeader, key: string): string | undefined {
  const v = h.kv.get(key)?.value;
  return typeof v === "string" ? v : undefined;
}

/** The value of a numeric KV (u64/i64 beyond 2^53 give undefined), or undefined. */
export function ggufNumber(h: GGUFHeader, key: string): number | undefined {
  const v = h.kv.get(key)?.value;
  return typeof v === "number" ? v : undefined;
}

export function ggufBool(h: GGUFHeader, key: string): boolean | undefined {
  const v = h.kv.get(key)?.value;
  return typeof v === "boolean" ? v : undefined;
}

/** `general.architecture`, or "unknown". */
export function architecture(h: GGUFHeader): string {
  return ggufString(h, "general.architecture") ?? "unknown";
}

/** The value of `<arch>.<suffix>`, e.g. archKey(h, "context_length"). */
export function archKey(h: GGUFHeader, suffix: string): GGUFValue | undefined {
  return h.kv.get(`${architecture(h)}.${suffix}`)?.value;
}

/** Sum over all tensors of the product of their dimensions. */
export function parameterCount(h: GGUFHeader): number {
  let total = 0;
  for (const t of h.tensors) total += t.dims.reduce((a, b) => a * b, 1);
  return total;
}

/** Shortest decimal that reads back as the same float32, like Go's JSON encoding of a float32. */
function float32Number(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  for (let p = 1; p <= 9; p++) {
    const n = Number(x.toPrecision(p));
    if (Math.fround(n) === x) return n;
  }
  return x;
}

/** A JSON-encodable metadata value as kvToJSON returns it. */
export type GGUFJSONValue = number | string | boolean | null | GGUFJSONValue[];

function toJSONValue(v: GGUFValue, type: GGUFValueType | undefined, verbose: boolean, top: boolean): GGUFJSONValue {
  if (Array.isArray(v)) {
    if (top && !verbose && v.length > 5) return [];
    const it = arrayItemTypes.get(v);
    return v.map((x) => toJSONValue(x, it, verbose, false));
  }
  if (typeof v === "bigint") {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v.toString();
  }
  if (typeof v === "number") {
    if (type === GGUFValueType.FLOAT32) return Number.isFinite(v) ? float32Number(v) : null;
    return Number.isFinite(v) ? v : null;
  }
  return v;
}

/**
 * The object /api/show returns as `model_info`: every KV except `general.name` and
 * `tokenizer.chat_template`, plus the recomputed `general.parameter_count`, keys sorted as Go's
 * JSON encoder sorts map keys. Without `verbose`, arrays longer than 5 elements become [].
 * u64/i64 values beyond 2^53 become decimal strings; non-finite floats become null.
 */
export function kvToJSON(h: GGUFHeader, opts: { verbose?: boolean } = {}): Record<string, GGUFJSONValue> {
  const verbose = opts.verbose ?? false;
  const entries: Array<[string, GGUFJSONValue]> = [];
  for (const [key, kv] of h.kv) {
    if (key === "general.name" || key === "tokenizer.chat_template" || key === "general.parameter_count") continue;
    entries.push([key, toJSONValue(kv.value, kv.type === GGUFValueType.ARRAY ? kv.arrayType : kv.type, verbose, true)]);
  }
  entries.push(["general.parameter_count", parameterCount(h)]);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries);
}
