// Safetensors headers: an 8-byte little-endian length, then a JSON object naming every tensor's
// dtype, shape and byte range in the data section that follows. Only the header is read.

import { open } from "node:fs/promises";
import { ConvertError } from "./errors.ts";
import { elementCount, type TensorRef } from "./tensor-ref.ts";

/** Larger headers are not plausible (a 1000-layer model needs well under 10 MB). */
const MAX_HEADER = 100 * 1024 * 1024;

const DTYPE_SIZES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export interface SafetensorsFile {
  tensors: TensorRef[];
  metadata: Record<string, string>;
}

/** Reads one file's header; `file` is the name used in messages. */
export async function readSafetensors(path: string, file: string): Promise<SafetensorsFile> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const fail = (problem: string): never => {
      throw new ConvertError(`${file}: not a valid safetensors file: ${problem}`);
    };
    if (size < 8) fail(`it has ${size} bytes, fewer than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(Math.min(MAX_HEADER, size - 8))) fail(`header length ${n} exceeds the file (${size} bytes) or the ${MAX_HEADER}-byte limit`);
    const headerLen = Number(n);
    const buf = Buffer.alloc(headerLen);
    await fh.read(buf, 0, headerLen, 8);
    let json: unknown;
    try {
      json = JSON.parse(buf.toString("utf8"));
    } catch (e) {
      return fail(`header is not JSON (${(e as Error).message})`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) return fail("header is not a JSON object");
    const dataStart = 8 + headerLen;
    const tensors: TensorRef[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (v && typeof v === "object") metadata = v as Record<string, string>;
        continue;
      }
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const where = `tensor ${JSON.stringify(name)}`;
      if (typeof e?.dtype !== "string") fail(`${where} has no dtype`);
      const dtype = e.dtype as string;
      const shape = e.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`${where} has an invalid shape ${JSON.stringify(shape)}`);
      const offs = e.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) {
        fail(`${where} has invalid data_offsets ${JSON.stringify(offs)}`);
      }
      const [begin, end] = offs as [number, number];
      if (dataStart + end > size) fail(`${where} ends at byte ${dataStart + end}, past the end of the file (${size} bytes)`);
      const elem = DTYPE_SIZES[dtype];
      const dims = shape as number[];
      if (elem !== undefined && elementCount(dims) * elem !== end - begin) {
        fail(`${where}: shape [${dims.join(", ")}] of ${dtype} needs ${elementCount(dims) * elem} bytes, its range holds ${end - begin}`);
      }
      tensors.push({ name, dtype, shape: dims, path, offset: dataStart + begin, size: end - begin, file });
    }
    return { tensors, metadata };
  } finally {
    await fh.close();
  }
}
