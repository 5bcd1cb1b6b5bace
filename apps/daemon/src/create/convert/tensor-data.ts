// Streams one output tensor's bytes: reads its source ranges in chunks of whole rows, applies
// the rotary row permutation and Gemma's norm offset, and converts element types. A few chunks
// are held at a time (some read ahead while the previous one is written), in buffers that one
// conversion reuses from tensor to tensor.

import { open, type FileHandle } from "node:fs/promises";
import type { GGUFTensorProducer } from "@corral/shared/gguf/index";
import { convertElements, decodeToF32, encodeF32, DTYPE_BYTES, type SourceDType } from "./dtype.ts";
import type { PlannedTensor } from "./architectures.ts";
import { ConvertError } from "./errors.ts";
import { elementCount, type TensorRef } from "./tensor-ref.ts";

/** Small enough to stay in a core's cache from read to conversion to write. */
const CHUNK_BYTES = 2 * 1024 * 1024;
/** Chunks read (and converted) ahead of the writer: enough that a read is always under way. */
const READ_AHEAD = 3;

/**
 * Chunk buffers, reused. Allocating a fresh multi-megabyte buffer per chunk costs more than the
 * conversion itself: the kernel has to zero new pages, and the garbage collector runs often to
 * free the old ones. Reused buffers stay in the processor's caches from read to write.
 */
class ChunkBuffers {
  private readonly free: Buffer[] = [];

  /** A buffer of exactly `size` bytes, whose memory is the caller's until `release`. */
  take(size: number): Buffer {
    const i = this.free.findIndex((b) => b.length >= size);
    const buf = i >= 0 ? this.free.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(Math.max(size, CHUNK_BYTES));
    return buf.subarray(0, size);
  }

  release(chunk: Buffer): void {
    // Keep as many as one tensor's pipeline uses at a time; larger one-off buffers (rows longer
    // than a chunk) go back to the garbage collector.
    const ab = chunk.buffer;
    if (ab.byteLength <= CHUNK_BYTES && this.free.length < READ_AHEAD + 2) this.free.push(Buffer.from(ab, 0, ab.byteLength));
  }
}

/** Open source files and chunk buffers, shared by every tensor of one conversion. */
export class SourceFiles {
  private readonly handles = new Map<string, Promise<FileHandle>>();
  readonly buffers = new ChunkBuffers();

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
function permuteRows(data: Uint8Array, out: Uint8Array, rowBytes: number, blockRows: number): void {
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
}

async function readExactly(fh: FileHandle, ref: TensorRef, buf: Buffer, offset: number): Promise<void> {
  const length = buf.length;
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) throw new ConvertError(`${ref.file}: ends before the data of tensor ${JSON.stringify(ref.name)} (needed byte ${offset + length})`);
    done += bytesRead;
  }
}

/** Converted bytes, and the buffer they lie in, to give back once they are written. */
interface Chunk {
  bytes: Uint8Array;
  buffer: Buffer;
}

/** A writer source that produces `t`'s converted bytes; `onRead` counts source bytes consumed. */
export function tensorSource(t: PlannedTensor, files: SourceFiles, onRead: (n: number) => void): GGUFTensorProducer {
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
        const { buffers } = files;
        // Reads run on libuv's threads while the main thread converts the chunk before, so with
        // a few chunks in flight reading, converting and writing overlap.
        const transform = (raw: Buffer): Chunk => {
          onRead(raw.length);
          let buffer = raw;
          if (t.permuteHeads) {
            buffer = buffers.take(raw.length);
            permuteRows(raw, buffer, rowBytes, blockRows);
            buffers.release(raw);
          }
          if (!t.addOne) return { bytes: convertElements(buffer, dtype, t.type), buffer };
          const v = decodeToF32(buffer, dtype);
          for (let i = 0; i < v.length; i++) v[i] = v[i]! + 1;
          return { bytes: encodeF32(v, t.type), buffer };
        };
        const next = (row: number): Promise<Chunk> => {
          const n = Math.min(chunkRows, rows - row);
          const buf = buffers.take(n * rowBytes);
          const p = readExactly(fh, ref, buf, ref.offset + row * rowBytes).then(() => transform(buf));
          // An unobserved rejection of the read-ahead must not crash the process if we stop early.
          p.catch(() => undefined);
          return p;
        };
        const queue: Array<Promise<Chunk>> = [];
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
          // The writer asks for the next chunk only once this one is written.
          yield chunk.bytes;
          buffers.release(chunk.buffer);
        }
      }
    },
  };
}
