// Streams one output tensor's bytes: reads its source ranges in chunks of whole rows, applies
// the rotary row permutation and Gemma's norm offset, and converts element types. At most two
// chunks are held at a time (one being read ahead while the previous one is written).

import { open, type FileHandle } from "node:fs/promises";
import type { GGUFTensorSource } from "@corral/shared/gguf/index";
import { convertElements, decodeToF32, encodeF32, DTYPE_BYTES, type SourceDType } from "./dtype.ts";
import type { PlannedTensor } from "./architectures.ts";
import { ConvertError } from "./errors.ts";
import { elementCount, type TensorRef } from "./tensor-ref.ts";

const CHUNK_BYTES = 8 * 1024 * 1024;
/** Chunks read (and converted) ahead of the writer. */
const READ_AHEAD = 1;

/** Open source files, shared by every tensor of one conversion. */
export class SourceFiles {
  private readonly handles = new Map<string, Promise<FileHandle>>();

  get(path: string): Promise<FileHandle> {
    let h = this.handles.get(path);
    if (!h) this.handles.set(path, (h = open(path, "r")));
    return h;
  }

  async close(): Promise<void> {
    for (const h of this.handles.values()) await (await h.catch(() => undefined))?.close().catch(() => undefined);
    this.handles.clear();
  }
}

export function outputBytes(t: PlannedTensor): number {
  return elementCount(t.shape) * DTYPE_BYTES[t.type];
}

/**
 * Within each head's block of rows, HF keeps the two rotary halves apart (first half, second
 * half); llama.cpp's rope pairs adjacent rows. Output row 2i+j is input row j·(n/2)+i.
 */
function permuteRows(data: Uint8Array, rowBytes: number, blockRows: number): Uint8Array {
  const out = new Uint8Array(data.length);
  const half = blockRows / 2;
  const blockBytes = rowBytes * blockRows;
  for (let b = 0; b < data.length; b += blockBytes) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = b + (j * half + i) * rowBytes;
        out.set(data.subarray(from, from + rowBytes), b + (2 * i + j) * rowBytes);
      }
    }
  }
  return out;
}

async function readExactly(fh: FileHandle, ref: TensorRef, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) throw new ConvertError(`${ref.file}: ends before the data of tensor ${JSON.stringify(ref.name)} (needed byte ${offset + length})`);
    done += bytesRead;
  }
  return buf;
}

/** A writer source that produces `t`'s converted bytes; `onRead` counts source bytes consumed. */
export function tensorSource(t: PlannedTensor, files: SourceFiles, onRead: (n: number) => void): GGUFTensorSource {
  const size = outputBytes(t);
  if (t.compute) {
    const compute = t.compute;
    const read = t.parts.reduce((n, p) => n + p.size, 0);
    return {
      size,
      chunks: async function* () {
        const v = await compute();
        onRead(read);
        yield encodeF32(v, t.type);
      },
    };
  }
  if (t.values) {
    const values = t.values;
    return { size, chunks: async function* () { yield encodeF32(values, t.type); } };
  }
  return {
    size,
    chunks: async function* () {
      for (const ref of t.parts) {
        const dtype = ref.dtype as SourceDType;
        const elem = DTYPE_BYTES[dtype];
        const rows = ref.shape[0] ?? 1;
        const rowBytes = ref.shape.length <= 1 ? elem : elementCount(ref.shape.slice(1)) * elem;
        const blockRows = t.permuteHeads ? rows / t.permuteHeads : 1;
        const chunkRows = Math.max(blockRows, Math.floor(CHUNK_BYTES / Math.max(rowBytes, 1) / blockRows) * blockRows);
        const fh = await files.get(ref.path);
        // The next chunk is read and converted while the previous one is being written: reads
        // and writes run on the I/O threads, so conversion overlaps them on the main thread.
        const transform = (raw: Buffer): Uint8Array => {
          onRead(raw.length);
          const ordered = t.permuteHeads ? permuteRows(raw, rowBytes, blockRows) : raw;
          if (!t.addOne) return convertElements(ordered, dtype, t.type);
          const v = decodeToF32(ordered, dtype);
          for (let i = 0; i < v.length; i++) v[i] = v[i]! + 1;
          return encodeF32(v, t.type);
        };
        const next = (row: number): Promise<Uint8Array> => {
          const n = Math.min(chunkRows, rows - row);
          const p = readExactly(fh, ref, ref.offset + row * rowBytes, n * rowBytes).then(transform);
          // An unobserved rejection of the read-ahead must not crash the process if we stop early.
          p.catch(() => undefined);
          return p;
        };
        const queue: Array<Promise<Uint8Array>> = [];
        let row = 0;
        const fill = (): void => {
          while (queue.length < READ_AHEAD && row < rows) {
            queue.push(next(row));
            row = Math.min(rows, row + chunkRows);
          }
        };
        fill();
        while (queue.length > 0) {
          const chunk = await queue.shift()!;
          fill();
          yield chunk;
        }
      }
    },
  };
}
