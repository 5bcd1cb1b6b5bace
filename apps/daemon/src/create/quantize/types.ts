// The quantization types `create --quantize` accepts, the llama_ftype value each one asks
// llama.cpp for, and what a source model must be to be quantized (docs/daemon.md, "Create").

import type { GGUFHeader } from "@corral/shared/gguf/reader";
import { ggufNumber } from "@corral/shared/gguf/reader";
import { GGMLType } from "@corral/shared/gguf/types";
import { badRequest } from "../../errors.ts";

export interface QuantType {
  /** Upper-case canonical name, as `general.file_type` is shown (`Q4_K_M`). */
  name: string;
  /** The llama_ftype value (also the `general.file_type` the output carries). */
  ftype: number;
}

// llama_ftype values of llama.cpp's include/llama.h; they are part of the GGUF format
// (`general.file_type`), so they do not move between versions.
const TYPES: readonly QuantType[] = [
  { name: "Q4_0", ftype: 2 },
  { name: "Q4_1", ftype: 3 },
  { name: "Q5_0", ftype: 8 },
  { name: "Q5_1", ftype: 9 },
  { name: "Q8_0", ftype: 7 },
  { name: "Q2_K", ftype: 10 },
  { name: "Q3_K_S", ftype: 11 },
  { name: "Q3_K_M", ftype: 12 },
  { name: "Q3_K_L", ftype: 13 },
  { name: "Q4_K_S", ftype: 14 },
  { name: "Q4_K_M", ftype: 15 },
  { name: "Q5_K_S", ftype: 16 },
  { name: "Q5_K_M", ftype: 17 },
  { name: "Q6_K", ftype: 18 },
  { name: "F16", ftype: 1 },
  { name: "BF16", ftype: 32 },
  { name: "F32", ftype: 0 },
];

const ALIASES: ReadonlyMap<string, string> = new Map([
  ["Q4_K", "Q4_K_M"],
  ["Q5_K", "Q5_K_M"],
]);

const BY_NAME: ReadonlyMap<string, QuantType> = new Map(TYPES.map((t) => [t.name, t]));

/** Every accepted name, in the order the error message lists them. */
export const QUANT_TYPE_NAMES: readonly string[] = TYPES.map((t) => t.name);

/** Parses a `quantize` value case-insensitively; an unknown one is a 400 naming the valid ones. */
export function parseQuantType(value: string): QuantType {
  const upper = value.trim().toUpperCase();
  const t = BY_NAME.get(ALIASES.get(upper) ?? upper);
  if (!t) {
    throw badRequest(`unsupported quantization type ${value} - supported types are ${QUANT_TYPE_NAMES.join(", ")} (Q4_K = Q4_K_M, Q5_K = Q5_K_M)`);
  }
  return t;
}

export const UNQUANTIZED_ONLY = "quantization is only supported for F16, BF16 and F32 models";

const FLOAT_TENSORS: ReadonlySet<number> = new Set([GGMLType.F32, GGMLType.F16, GGMLType.BF16]);

/**
 * The source's type name (`F32`, `F16` or `BF16`) when it can be quantized; throws a 400
 * otherwise. `general.file_type` decides when present; files without it (llama2.c conversions such
 * as stories260K) are judged by their tensors. Either way every tensor must be a float type,
 * because llama.cpp only re-quantizes with `allow_requantize`, which would lose precision twice.
 */
export function sourceFloatType(h: GGUFHeader): "F32" | "F16" | "BF16" {
  if (h.tensors.some((t) => !FLOAT_TENSORS.has(t.type))) throw badRequest(UNQUANTIZED_ONLY);
  const ft = ggufNumber(h, "general.file_type");
  if (ft === 0) return "F32";
  if (ft === 1) return "F16";
  if (ft === 32) return "BF16";
  if (ft !== undefined) throw badRequest(UNQUANTIZED_ONLY);
  // Without the key, the type of the 2-D weights decides (norms are F32 in every float model).
  const matrices = h.tensors.filter((t) => t.dims.length >= 2);
  if (matrices.some((t) => t.type === GGMLType.BF16)) return "BF16";
  if (matrices.some((t) => t.type === GGMLType.F16)) return "F16";
  return "F32";
}
