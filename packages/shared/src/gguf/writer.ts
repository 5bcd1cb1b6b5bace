// GGUF v3 little-endian writer. The header is built in memory (it is small next to the tensor
// data); tensor data is streamed from buffers, byte ranges of other files or producers, so rewriting a
// multi-gigabyte model uses constant memory. Layout follows llama.cpp: header, zero padding to the
// alignment, then every tensor's data followed by zero padding to the alignment. A file without
// tensors ends right after its header.

import { randomBytes } from "node:crypto";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { renameDurably } from "../durable-write.ts";
import { dirname, basename, join } from "node:path";
import {
  GGUF_DEFAULT_ALIGNMENT,
  alignUp,
  arrayItemType,
  isPowerOfTwo,
  type GGUFKV,
  type GGUFValue,
} from "./reader.ts";
import { GGUFValueType, TensorShapeError, isGGUFValueType, tensorByteSize, valueTypeName } from "./types.ts";

/**
 * Tensor data made on demand: `chunks()` yields exactly `size` bytes in order. Lets a caller
 * write tensors larger than it wants to hold, one piece at a time.
 */
export interface GGUFTensorProducer {
  size: number;
  chunks: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

export type GGUFTensorSource = Uint8Array | { path: string; offset: number; size: number } | GGUFTensorProducer;

function isProducer(s: GGUFTensorSource): s is GGUFTensorProducer {
  return !(s instanceof Uint8Array) && "chunks" in s;
}

export interface GGUFTensorSpec {
  name: string;
  dims: number[];
  /** ggml type id. */
  type: number;
}

export interface GGUFWriteSpec {
  /** Written in this order. */
  kv: GGUFKV[];
  tensors: Array<GGUFTensorSpec & { source: GGUFTensorSource }>;
  /** Defaults to `general.alignment` from `kv`, else 32. Must agree with `general.alignment` when both are given. */
  alignment?: number;
}

export interface EncodedGGUFHeader {
  /** Header bytes: magic through the last tensor info, without padding. */
  bytes: Uint8Array;
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  /** Per tensor: offset relative to the data section, and size in bytes. */
  offsets: number[];
  sizes: number[];
  /** Total size of the file these tensors make. */
  fileSize: number;
}

export class GGUFWriteError extends Error {
  constructor(
    readonly target: string,
    readonly problem: string,
  ) {
    super(`cannot write GGUF ${JSON.stringify(target)}: ${problem}`);
    this.name = "GGUFWriteError";
  }
}

const encoder = new TextEncoder();

/** Append-only little-endian byte buffer. */
class ByteBuilder {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.length + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // The offset is reserved before `this.view` is read: reserving may replace the buffer.
  u8(v: number): void { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number): void { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number): void { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number): void { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number): void { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number): void { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  f32(v: number): void { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number): void { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  u64(v: bigint): void { const at = this.reserve(8); this.view.setBigUint64(at, v, true); }
  i64(v: bigint): void { const at = this.reserve(8); this.view.setBigInt64(at, v, true); }
  bytes(b: Uint8Array): void { const at = this.reserve(b.length); this.buf.set(b, at); }
  string(s: string): void {
    const b = encoder.encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

const INT_RANGES: Partial<Record<GGUFValueType, readonly [number, number]>> = {
  [GGUFValueType.UINT8]: [0, 0xff],
  [GGUFValueType.INT8]: [-0x80, 0x7f],
  [GGUFValueType.UINT16]: [0, 0xffff],
  [GGUFValueType.INT16]: [-0x8000, 0x7fff],
  [GGUFValueType.UINT32]: [0, 0xffffffff],
  [GGUFValueType.INT32]: [-0x80000000, 0x7fffffff],
};
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

interface WriteValueOptions {
  type: GGUFValueType;
  /** An array's element type, when the metadata gives one. */
  itemType?: GGUFValueType | undefined;
  /** Names the value in error messages. */
  what: string;
  fail: (p: string) => never;
}

function writeValue(b: ByteBuilder, v: GGUFValue, opts: WriteValueOptions): void {
  const { type, itemType, what } = opts;
  // Annotated so that a call to it narrows what follows, as for a parameter.
  const fail: (p: string) => never = opts.fail;
  const bad = (): never => fail(`${what}: value ${describe(v)} does not fit type ${valueTypeName(type)}`);
  switch (type) {
    case GGUFValueType.UINT8:
    case GGUFValueType.INT8:
    case GGUFValueType.UINT16:
    case GGUFValueType.INT16:
    case GGUFValueType.UINT32:
    case GGUFValueType.INT32: {
      const [lo, hi] = INT_RANGES[type] ?? [0, 0];
      if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) bad();
      const n = v as number;
      if (type === GGUFValueType.UINT8) b.u8(n);
      else if (type === GGUFValueType.INT8) b.i8(n);
      else if (type === GGUFValueType.UINT16) b.u16(n);
      else if (type === GGUFValueType.INT16) b.i16(n);
      else if (type === GGUFValueType.UINT32) b.u32(n);
      else b.i32(n);
      return;
    }
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64: {
      let big: bigint;
      if (typeof v === "bigint") big = v;
      else if (typeof v === "number" && Number.isSafeInteger(v)) big = BigInt(v);
      else return bad();
      if (type === GGUFValueType.UINT64) {
        if (big < 0n || big > U64_MAX) bad();
        b.u64(big);
      } else {
        if (big < I64_MIN || big > I64_MAX) bad();
        b.i64(big);
      }
      return;
    }
    case GGUFValueType.FLOAT32:
    case GGUFValueType.FLOAT64:
      if (typeof v !== "number") bad();
      if (type === GGUFValueType.FLOAT32) b.f32(v as number);
      else b.f64(v as number);
      return;
    case GGUFValueType.BOOL:
      if (typeof v !== "boolean") bad();
      b.u8(v ? 1 : 0);
      return;
    case GGUFValueType.STRING:
      if (typeof v !== "string") bad();
      b.string(v as string);
      return;
    case GGUFValueType.ARRAY: {
      if (!Array.isArray(v)) return bad();
      const it = itemType ?? arrayItemType(v);
      if (it === undefined) fail(`${what}: the array's element type is not known (set arrayType, or tag nested arrays with ggufArray)`);
      if (!isGGUFValueType(it)) fail(`${what}: unknown array element type ${String(it)}`);
      b.u32(it);
      b.u64(BigInt(v.length));
      for (let i = 0; i < v.length; i++) writeValue(b, v[i] as GGUFValue, { type: it, what: `${what}[${i}]`, fail });
      return;
    }
    default:
      fail(`${what}: unknown value type ${String(type)}`);
  }
}

function describe(v: GGUFValue): string {
  if (typeof v === "bigint") return `${v}n`;
  if (Array.isArray(v)) return `array(${v.length})`;
  return JSON.stringify(v);
}

/** The alignment a KV list implies, checked against an explicit one. */
function resolveAlignment(kv: readonly GGUFKV[], explicit: number | undefined, fail: (p: string) => never): number {
  const entry = kv.find((e) => e.key === "general.alignment");
  let fromKV: number | undefined;
  if (entry) {
    const v = entry.value;
    if (typeof v !== "number" || !isPowerOfTwo(v)) fail(`general.alignment is ${describe(v)}; it must be a power of two`);
    fromKV = v as number;
  }
  if (explicit !== undefined) {
    if (!isPowerOfTwo(explicit)) fail(`alignment ${explicit} is not a power of two`);
    const implied = fromKV ?? GGUF_DEFAULT_ALIGNMENT;
    if (explicit !== implied) {
      fail(`alignment ${explicit} disagrees with the metadata (${fromKV === undefined ? "no general.alignment, so 32" : `general.alignment = ${fromKV}`})`);
    }
    return explicit;
  }
  return fromKV ?? GGUF_DEFAULT_ALIGNMENT;
}

/**
 * Encodes a v3 little-endian header and computes the data layout: tensor offsets are packed in
 * order, each padded to the alignment.
 */
export function encodeGGUFHeader(spec: { kv: readonly GGUFKV[]; tensors: readonly GGUFTensorSpec[]; alignment?: number }, target = "<memory>"): EncodedGGUFHeader {
  const fail = (problem: string): never => {
    throw new GGUFWriteError(target, problem);
  };
  const alignment = resolveAlignment(spec.kv, spec.alignment, fail);
  const b = new ByteBuilder();
  b.bytes(encoder.encode("GGUF"));
  b.u32(3);
  b.u64(BigInt(spec.tensors.length));
  b.u64(BigInt(spec.kv.length));

  const keys = new Set<string>();
  for (const e of spec.kv) {
    if (keys.has(e.key)) fail(`duplicate metadata key ${JSON.stringify(e.key)}`);
    keys.add(e.key);
    if (!isGGUFValueType(e.type)) fail(`metadata ${JSON.stringify(e.key)} has unknown value type ${String(e.type)}`);
    b.string(e.key);
    b.u32(e.type);
    writeValue(b, e.value, { type: e.type, itemType: e.type === GGUFValueType.ARRAY ? e.arrayType : undefined, what: `metadata ${JSON.stringify(e.key)}`, fail });
  }

  const offsets: number[] = [];
  const sizes: number[] = [];
  const names = new Set<string>();
  let cursor = 0;
  for (const t of spec.tensors) {
    const label = `tensor ${JSON.stringify(t.name)}`;
    if (names.has(t.name)) fail(`duplicate tensor name ${JSON.stringify(t.name)}`);
    names.add(t.name);
    if (t.dims.length > 4) fail(`${label} has ${t.dims.length} dimensions (at most 4 are allowed)`);
    let size = 0;
    try {
      size = tensorByteSize(t.type, t.dims);
    } catch (err) {
      if (err instanceof TensorShapeError) fail(`${label}: ${err.message}`);
      throw err;
    }
    b.string(t.name);
    b.u32(t.dims.length);
    for (const d of t.dims) b.u64(BigInt(d));
    b.u32(t.type);
    b.u64(BigInt(cursor));
    offsets.push(cursor);
    sizes.push(size);
    cursor = alignUp(cursor + size, alignment);
  }

  const bytes = b.result();
  const dataOffset = alignUp(bytes.length, alignment);
  const fileSize = spec.tensors.length === 0 ? bytes.length : dataOffset + cursor;
  return { bytes, alignment, dataOffset, offsets, sizes, fileSize };
}

const COPY_CHUNK = 4 * 1024 * 1024;

async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done);
    done += bytesWritten;
  }
}

/**
 * Writes a GGUF v3 file, streaming tensor data from its sources. The file appears at `out` only
 * when complete (written next to it under a temporary name, then renamed).
 */
export async function writeGGUF(out: string, spec: GGUFWriteSpec): Promise<{ size: number; dataOffset: number; offsets: number[] }> {
  const fail = (problem: string): never => {
    throw new GGUFWriteError(out, problem);
  };
  const header = encodeGGUFHeader(spec, out);
  spec.tensors.forEach((t, i) => {
    const want = header.sizes[i];
    const have = t.source instanceof Uint8Array ? t.source.length : t.source.size;
    if (have !== want) fail(`tensor ${JSON.stringify(t.name)} needs ${want} bytes but its source holds ${have}`);
    if (!(t.source instanceof Uint8Array) && !isProducer(t.source) && (!Number.isSafeInteger(t.source.offset) || t.source.offset < 0)) {
      fail(`tensor ${JSON.stringify(t.name)} has invalid source offset ${t.source.offset}`);
    }
  });

  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}-${randomBytes(4).toString("hex")}.partial`);
  const inputs = new Map<string, FileHandle>();
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, "wx");
    await writeAll(fh, header.bytes);
    let written = header.bytes.length;
    const zeros = new Uint8Array(header.alignment);
    const padTo = async (target: number): Promise<void> => {
      if (target > written) {
        await writeAll(fh!, zeros.subarray(0, target - written));
        written = target;
      }
    };
    let copyBuf: Buffer | undefined;
    for (let i = 0; i < spec.tensors.length; i++) {
      const t = spec.tensors[i]!;
      await padTo(header.dataOffset + header.offsets[i]!);
      const src = t.source;
      if (src instanceof Uint8Array) {
        await writeAll(fh, src);
        written += src.length;
      } else if (isProducer(src)) {
        let produced = 0;
        for await (const chunk of src.chunks()) {
          if (produced + chunk.length > src.size) fail(`tensor ${JSON.stringify(t.name)}: its producer yielded more than the ${src.size} bytes it declared`);
          await writeAll(fh, chunk);
          produced += chunk.length;
        }
        if (produced !== src.size) fail(`tensor ${JSON.stringify(t.name)}: its producer yielded ${produced} bytes, expected ${src.size}`);
        written += produced;
      } else {
        let input = inputs.get(src.path);
        if (!input) {
          input = await open(src.path, "r");
          inputs.set(src.path, input);
        }
        copyBuf ??= Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, src.size)));
        if (copyBuf.length < Math.min(COPY_CHUNK, src.size)) copyBuf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, src.size));
        let copied = 0;
        while (copied < src.size) {
          const n = Math.min(copyBuf.length, src.size - copied);
          const { bytesRead } = await input.read(copyBuf, 0, n, src.offset + copied);
          if (bytesRead === 0) {
            fail(`tensor ${JSON.stringify(t.name)}: source ${JSON.stringify(src.path)} ends at byte ${src.offset + copied}, before the ${src.size} bytes at offset ${src.offset} were read`);
          }
          await writeAll(fh, copyBuf.subarray(0, bytesRead));
          copied += bytesRead;
        }
        written += src.size;
      }
      await padTo(alignUp(written - header.dataOffset, header.alignment) + header.dataOffset);
    }
    if (written !== header.fileSize) fail(`internal layout error: wrote ${written} bytes, expected ${header.fileSize}`);
    await fh.close();
    fh = undefined;
    await renameDurably(tmp, out);
    return { size: written, dataOffset: header.dataOffset, offsets: header.offsets };
  } catch (err) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  } finally {
    for (const h of inputs.values()) await h.close().catch(() => {});
  }
}
