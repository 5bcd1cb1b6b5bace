// GGUF vocabulary: metadata value types, ggml tensor types with their storage sizes, and the
// `general.file_type` names Ollama shows (docs/daemon.md, "GGUF files").

/** Metadata value types as stored in the file (u32 tag before every value). */
export const GGUFValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GGUFValueType = (typeof GGUFValueType)[keyof typeof GGUFValueType];

const VALUE_TYPE_NAMES: readonly string[] = [
  "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
];

export function isGGUFValueType(n: number): n is GGUFValueType {
  return Number.isInteger(n) && n >= 0 && n <= 12;
}

export function valueTypeName(t: number): string {
  return VALUE_TYPE_NAMES[t] ?? `unknown(${t})`;
}

/** Encoded size of a fixed-size value type; undefined for string and array. */
export function fixedValueSize(t: GGUFValueType): number | undefined {
  switch (t) {
    case GGUFValueType.UINT8:
    case GGUFValueType.INT8:
    case GGUFValueType.BOOL:
      return 1;
    case GGUFValueType.UINT16:
    case GGUFValueType.INT16:
      return 2;
    case GGUFValueType.UINT32:
    case GGUFValueType.INT32:
    case GGUFValueType.FLOAT32:
      return 4;
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64:
    case GGUFValueType.FLOAT64:
      return 8;
    default:
      return undefined;
  }
}

export function isIntegerValueType(t: GGUFValueType): boolean {
  return t <= GGUFValueType.INT32 || t === GGUFValueType.UINT64 || t === GGUFValueType.INT64;
}

/** How ggml stores one tensor type: `blockSize` elements take `typeSize` bytes. */
export interface GGMLTypeInfo {
  readonly id: number;
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

const QK_K = 256;

// Ids 4, 5 (Q4_2, Q4_3), 31–33 (Q4_0_4_4 …) and 36–38 (IQ4_NL_4_4 …) were retired from ggml and
// can no longer appear in a GGUF file, so they are deliberately absent.
const GGML_TYPE_LIST: readonly GGMLTypeInfo[] = [
  { id: 0, name: "F32", blockSize: 1, typeSize: 4 },
  { id: 1, name: "F16", blockSize: 1, typeSize: 2 },
  { id: 2, name: "Q4_0", blockSize: 32, typeSize: 2 + 16 },
  { id: 3, name: "Q4_1", blockSize: 32, typeSize: 2 + 2 + 16 },
  { id: 6, name: "Q5_0", blockSize: 32, typeSize: 2 + 4 + 16 },
  { id: 7, name: "Q5_1", blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  { id: 8, name: "Q8_0", blockSize: 32, typeSize: 2 + 32 },
  { id: 9, name: "Q8_1", blockSize: 32, typeSize: 2 + 2 + 32 },
  { id: 10, name: "Q2_K", blockSize: QK_K, typeSize: QK_K / 16 + QK_K / 4 + 2 + 2 },
  { id: 11, name: "Q3_K", blockSize: QK_K, typeSize: QK_K / 8 + QK_K / 4 + 12 + 2 },
  { id: 12, name: "Q4_K", blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 2 },
  { id: 13, name: "Q5_K", blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 },
  { id: 14, name: "Q6_K", blockSize: QK_K, typeSize: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 },
  { id: 15, name: "Q8_K", blockSize: QK_K, typeSize: 4 + QK_K + (QK_K / 16) * 2 },
  { id: 16, name: "IQ2_XXS", blockSize: QK_K, typeSize: 2 + (QK_K / 8) * 2 },
  { id: 17, name: "IQ2_XS", blockSize: QK_K, typeSize: 2 + (QK_K / 8) * 2 + QK_K / 32 },
  { id: 18, name: "IQ3_XXS", blockSize: QK_K, typeSize: 2 + (3 * QK_K) / 8 },
  { id: 19, name: "IQ1_S", blockSize: QK_K, typeSize: 2 + QK_K / 8 + (QK_K / 32) * 2 },
  { id: 20, name: "IQ4_NL", blockSize: 32, typeSize: 2 + 16 },
  { id: 21, name: "IQ3_S", blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64 },
  { id: 22, name: "IQ2_S", blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 32 + QK_K / 32 },
  { id: 23, name: "IQ4_XS", blockSize: QK_K, typeSize: 2 + 2 + QK_K / 64 + QK_K / 2 },
  { id: 24, name: "I8", blockSize: 1, typeSize: 1 },
  { id: 25, name: "I16", blockSize: 1, typeSize: 2 },
  { id: 26, name: "I32", blockSize: 1, typeSize: 4 },
  { id: 27, name: "I64", blockSize: 1, typeSize: 8 },
  { id: 28, name: "F64", blockSize: 1, typeSize: 8 },
  { id: 29, name: "IQ1_M", blockSize: QK_K, typeSize: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  { id: 30, name: "BF16", blockSize: 1, typeSize: 2 },
  { id: 34, name: "TQ1_0", blockSize: QK_K, typeSize: (QK_K - (4 * QK_K) / 64) / 5 + QK_K / 64 + 2 },
  { id: 35, name: "TQ2_0", blockSize: QK_K, typeSize: QK_K / 4 + 2 },
  { id: 39, name: "MXFP4", blockSize: 32, typeSize: 1 + 16 },
  { id: 40, name: "NVFP4", blockSize: 64, typeSize: 4 + 32 },
  { id: 41, name: "Q1_0", blockSize: 128, typeSize: 2 + 16 },
];

export const GGML_TYPES: ReadonlyMap<number, GGMLTypeInfo> = new Map(GGML_TYPE_LIST.map((t) => [t.id, t]));
const GGML_TYPES_BY_NAME: ReadonlyMap<string, GGMLTypeInfo> = new Map(GGML_TYPE_LIST.map((t) => [t.name, t]));

/** Named ids for the types code refers to directly. */
export const GGMLType = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35,
  MXFP4: 39, NVFP4: 40, Q1_0: 41,
} as const;

export function ggmlType(id: number): GGMLTypeInfo | undefined {
  return GGML_TYPES.get(id);
}

/** The name shown for a tensor type (e.g. in /api/show `tensors`); `unknown(<id>)` when unknown. */
export function ggmlTypeName(id: number): string {
  return GGML_TYPES.get(id)?.name ?? `unknown(${id})`;
}

export function ggmlTypeByName(name: string): GGMLTypeInfo | undefined {
  return GGML_TYPES_BY_NAME.get(name.toUpperCase());
}

/** Thrown for tensor shapes ggml cannot store, independent of any file. */
export class TensorShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TensorShapeError";
  }
}

/**
 * Bytes a tensor of this type and shape occupies (rows are stored block by block, so the first
 * dimension must be a whole number of blocks). Throws TensorShapeError for an unknown type, a
 * negative or fractional dimension, a first dimension that is not a multiple of the block size, or
 * a size beyond 2^53.
 */
export function tensorByteSize(type: number, dims: readonly number[]): number {
  const info = GGML_TYPES.get(type);
  if (!info) throw new TensorShapeError(`unknown ggml type ${type}`);
  let elements = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new TensorShapeError(`invalid dimension ${d}`);
    elements *= d;
    if (!Number.isSafeInteger(elements)) throw new TensorShapeError(`element count of shape [${dims.join(", ")}] exceeds 2^53`);
  }
  const ne0 = dims[0] ?? 1;
  if (ne0 % info.blockSize !== 0) {
    throw new TensorShapeError(`first dimension ${ne0} is not a multiple of the ${info.name} block size ${info.blockSize}`);
  }
  const size = (elements / info.blockSize) * info.typeSize;
  if (!Number.isSafeInteger(size)) throw new TensorShapeError(`byte size of shape [${dims.join(", ")}] exceeds 2^53`);
  return size;
}

// `general.file_type` values (llama_ftype). Gaps are retired ids; 0 (all F32) is listed so that
// fileTypeId("F32") works, but Ollama reports the value 0 as "unknown".
const FILE_TYPE_LIST: ReadonlyArray<readonly [number, string]> = [
  [0, "F32"], [1, "F16"], [2, "Q4_0"], [3, "Q4_1"], [7, "Q8_0"], [8, "Q5_0"], [9, "Q5_1"],
  [10, "Q2_K"], [11, "Q3_K_S"], [12, "Q3_K_M"], [13, "Q3_K_L"], [14, "Q4_K_S"], [15, "Q4_K_M"],
  [16, "Q5_K_S"], [17, "Q5_K_M"], [18, "Q6_K"], [19, "IQ2_XXS"], [20, "IQ2_XS"], [21, "Q2_K_S"],
  [22, "IQ3_XS"], [23, "IQ3_XXS"], [24, "IQ1_S"], [25, "IQ4_NL"], [26, "IQ3_S"], [27, "IQ3_M"],
  [28, "IQ2_S"], [29, "IQ2_M"], [30, "IQ4_XS"], [31, "IQ1_M"], [32, "BF16"], [36, "TQ1_0"],
  [37, "TQ2_0"], [38, "MXFP4_MOE"], [39, "NVFP4"], [40, "Q1_0"],
];
const FILE_TYPE_NAMES: ReadonlyMap<number, string> = new Map(FILE_TYPE_LIST);
const FILE_TYPE_IDS: ReadonlyMap<string, number> = new Map([
  ...FILE_TYPE_LIST.map(([id, name]) => [name, id] as const),
  ["Q4_K", 15] as const,
]);

/** The display name of a `general.file_type` value; 0, missing or unrecognised gives "unknown". */
export function fileTypeName(n: number | undefined): string {
  if (n === undefined || n === 0) return "unknown";
  return FILE_TYPE_NAMES.get(n) ?? "unknown";
}

/** The `general.file_type` value for a name (case-insensitive, `Q4_K` = `Q4_K_M`); undefined if unknown. */
export function fileTypeId(name: string): number | undefined {
  return FILE_TYPE_IDS.get(name.toUpperCase());
}
