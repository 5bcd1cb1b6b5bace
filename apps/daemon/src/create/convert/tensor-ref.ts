// A tensor as found in a checkpoint: where its bytes lie, in which type, with which shape.

import type { SourceDType } from "./dtype.ts";

export interface TensorRef {
  /** Name in the checkpoint, e.g. "model.layers.0.self_attn.q_proj.weight". */
  name: string;
  /** Type as the checkpoint stores it; anything we cannot convert keeps its own name. */
  dtype: SourceDType | string;
  /** Row-major (PyTorch) shape, outermost first. */
  shape: number[];
  /** File that holds the bytes, and the byte range in it. */
  path: string;
  offset: number;
  size: number;
  /** The file's name as the user knows it, for messages. */
  file: string;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}
