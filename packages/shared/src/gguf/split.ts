// llama.cpp split GGUF sets (`<prefix>-00001-of-00003.gguf`): recognising shards, validating and
// ordering a set with Ollama's error strings, merging a set into one GGUF
// (docs/daemon.md, "GGUF files"), and writing a set the way llama.cpp's gguf-split does.

import { stat } from "node:fs/promises";
import { posix } from "node:path";
import {
  architecture,
  readGGUFHeader,
  validateGGUFLayout,
  type GGUFHeader,
  type GGUFKV,
} from "./reader.ts";
import { GGUFValueType, isIntegerValueType } from "./types.ts";
import { writeGGUF } from "./writer.ts";

export const SPLIT_NO = "split.no";
export const SPLIT_COUNT = "split.count";
export const SPLIT_TENSORS_COUNT = "split.tensors.count";
const SPLIT_KEYS = [SPLIT_NO, SPLIT_COUNT, SPLIT_TENSORS_COUNT] as const;

export class SplitGGUFError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SplitGGUFError";
  }
}

/** A file taking part in a set: its transport name (what errors show) and its header. */
export interface SplitFile {
  name: string;
  header: GGUFHeader;
}

export interface SplitInfo {
  /** `split.no`: 0-based shard index. */
  no?: number;
  /** `split.count`: number of shards. */
  count?: number;
  /** `split.tensors.count`: tensors over the whole set. */
  tensorsCount?: number;
}

/** True for `split.*` keys and their `<arch>.split.*` forms, which a merged file drops. */
export function isSplitKey(key: string, arch: string): boolean {
  return SPLIT_KEYS.some((k) => key === k || key === `${arch}.${k}`);
}

// Reads an integer split key, plain or arch-prefixed. Like Ollama, only a value that fits in
// 16 bits counts for split.no and split.count.
function splitValue(h: GGUFHeader, key: string, max: number): number | undefined {
  for (const k of [key, `${architecture(h)}.${key}`]) {
    const kv = h.kv.get(k);
    if (!kv || !isIntegerValueType(kv.type)) continue;
    const v = kv.value;
    if (typeof v === "number" && v >= 0 && v <= max) return v;
  }
  return undefined;
}

export function splitInfo(h: GGUFHeader): SplitInfo {
  const info: SplitInfo = {};
  const no = splitValue(h, SPLIT_NO, 0xffff);
  const count = splitValue(h, SPLIT_COUNT, 0xffff);
  const tensorsCount = splitValue(h, SPLIT_TENSORS_COUNT, Number.MAX_SAFE_INTEGER);
  if (no !== undefined) info.no = no;
  if (count !== undefined) info.count = count;
  if (tensorsCount !== undefined) info.tensorsCount = tensorsCount;
  return info;
}

const SPLIT_NAME_RE = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** Parses a llama.cpp split file name; `index` is 0-based. Undefined when the name does not match. */
export function parseSplitFileName(name: string): { dir: string; prefix: string; index: number; count: number } | undefined {
  const m = SPLIT_NAME_RE.exec(posix.basename(name));
  if (!m) return undefined;
  const idx = Number(m[2]);
  const count = Number(m[3]);
  // The numbers are 16-bit in llama.cpp; a 5-digit field above 65535 is not a valid split name.
  if (idx === 0 || idx > 0xffff || count === 0 || count > 0xffff) return undefined;
  return { dir: posix.dirname(name), prefix: m[1] ?? "", index: idx - 1, count };
}

/** Formats the name of shard `index` (0-based) of `count`. */
export function splitFileName(prefix: string, index: number, count: number): string {
  return `${prefix}-${String(index + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;
}

export interface SplitShardKey {
  dir: string;
  prefix: string;
  index: number;
  count: number;
  /** Files with the same key belong to the same set. */
  key: string;
}

/**
 * Whether a file is a shard (split.count > 1) and, if so, which set it belongs to. Throws
 * SplitGGUFError when the file name and the metadata disagree.
 */
export function splitShardKey(file: SplitFile & { mediaType?: string }): SplitShardKey | undefined {
  const { count } = splitInfo(file.header);
  if (count === undefined || count <= 1) return undefined;
  const f = JSON.stringify(file.name);
  const parsed = parseSplitFileName(file.name);
  if (!parsed) throw new SplitGGUFError(`split GGUF ${f} must use llama.cpp split filename pattern`);
  if (parsed.count !== count) {
    throw new SplitGGUFError(`split GGUF ${f} filename count ${parsed.count} does not match metadata count ${count}`);
  }
  if (parsed.index >= count) {
    throw new SplitGGUFError(`split GGUF ${f} filename index ${parsed.index} exceeds metadata count ${count}`);
  }
  const { no } = splitInfo(file.header);
  if (no === undefined) throw new SplitGGUFError(`split GGUF ${f} is missing split.no metadata`);
  if (no !== parsed.index) {
    throw new SplitGGUFError(`split GGUF ${f} filename index ${parsed.index} does not match metadata index ${no}`);
  }
  return { ...parsed, key: [file.mediaType ?? "", parsed.dir, parsed.prefix, count].join("\u0000") };
}

/**
 * Checks that the shards make one complete set without duplicates and returns them in shard order.
 * Only looks at the metadata; planSplitMerge also checks the file names.
 */
export function orderSplitShards<T extends SplitFile>(files: readonly T[]): T[] {
  const first = files[0];
  if (!first) throw new SplitGGUFError("empty split GGUF group");
  const { count } = splitInfo(first.header);
  if (count === undefined) throw new SplitGGUFError(`split GGUF ${JSON.stringify(first.name)} is missing split.count metadata`);
  if (count !== files.length) {
    throw new SplitGGUFError(`split GGUF ${JSON.stringify(first.name)} has ${files.length} shards, expected ${count}`);
  }
  const byIndex: Array<T | undefined> = new Array<T | undefined>(count).fill(undefined);
  for (const file of files) {
    const { no } = splitInfo(file.header);
    if (no === undefined) throw new SplitGGUFError(`split GGUF ${JSON.stringify(file.name)} is missing split.no metadata`);
    if (no >= count) throw new SplitGGUFError(`split GGUF ${JSON.stringify(file.name)} has invalid shard index ${no}`);
    if (byIndex[no] !== undefined) throw new SplitGGUFError(`split GGUF has duplicate shard index ${no}`);
    byIndex[no] = file;
  }
  const primary = byIndex[0];
  if (!primary) throw new SplitGGUFError("split GGUF is missing first shard");
  return byIndex.map((file, i) => {
    if (!file) throw new SplitGGUFError(`split GGUF ${JSON.stringify(primary.name)} is missing shard ${i}`);
    return file;
  });
}

/**
 * Groups the files into split sets (same media type, directory, prefix and count), checks every
 * shard's file name against its metadata and every set for completeness and duplicates, and
 * returns the sets in order of first appearance, each in shard order. A file that is not a shard
 * (split.count missing or 1) comes back as a group of its own.
 */
export function planSplitMerge<T extends SplitFile & { mediaType?: string }>(files: readonly T[]): T[][] {
  const out: T[][] = [];
  const sets = new Map<string, T[]>();
  for (const file of files) {
    const k = splitShardKey(file);
    if (!k) {
      out.push([file]);
      continue;
    }
    let set = sets.get(k.key);
    if (!set) {
      set = [];
      sets.set(k.key, set);
      out.push(set);
    }
    set.push(file);
  }
  const shardSets = new Set<T[]>(sets.values());
  return out.map((group) => (shardSets.has(group) ? orderSplitShards(group) : group));
}

/**
 * Merges shards (already in shard order, see planSplitMerge) into one GGUF at `outPath`: the KV of
 * shard 0 without the split keys, every shard's tensor infos in order with recomputed offsets, and
 * the tensor data streamed from the shards.
 */
export async function mergeSplitGGUF(
  orderedShards: ReadonlyArray<{ path: string; header: GGUFHeader }>,
  outPath: string,
): Promise<{ size: number; tensors: number }> {
  const first = orderedShards[0];
  if (!first) throw new SplitGGUFError("empty split GGUF group");
  const arch = architecture(first.header);
  const kv: GGUFKV[] = [...first.header.kv.values()].filter((e) => !isSplitKey(e.key, arch));
  const tensors = [];
  for (const shard of orderedShards) {
    const { size } = await stat(shard.path);
    validateGGUFLayout(shard.header, size, shard.path);
    for (const t of shard.header.tensors) {
      tensors.push({
        name: t.name,
        dims: t.dims,
        type: t.type,
        source: { path: shard.path, offset: shard.header.dataOffset + t.offset, size: t.size },
      });
    }
  }
  const declared = splitInfo(first.header).tensorsCount;
  if (declared !== undefined && declared !== tensors.length) {
    throw new SplitGGUFError(`split GGUF ${JSON.stringify(first.path)} declares ${declared} tensors in split.tensors.count but the shards hold ${tensors.length}`);
  }
  const { size } = await writeGGUF(outPath, { kv, tensors });
  return { size, tensors: tensors.length };
}

/**
 * Splits a GGUF into `parts` shards named `<outPrefix>-0000i-of-0000n.gguf`, as llama.cpp's
 * gguf-split writes them: tensors spread evenly in order, shard 0 carries all the metadata, and
 * every shard ends its metadata with split.no (u16), split.count (u16) and split.tensors.count (i32).
 * Returns the shard paths in order.
 */
export async function writeSplitGGUF(srcPath: string, parts: number, outPrefix: string): Promise<string[]> {
  const h = await readGGUFHeader(srcPath);
  const n = h.tensors.length;
  if (!Number.isInteger(parts) || parts < 1 || parts > 0xffff) throw new SplitGGUFError(`cannot split into ${parts} parts`);
  if (parts > Math.max(1, n)) throw new SplitGGUFError(`cannot split ${n} tensors into ${parts} parts: every part needs a tensor`);
  const arch = architecture(h);
  const base = [...h.kv.values()].filter((e) => !isSplitKey(e.key, arch));
  const paths: string[] = [];
  for (let i = 0; i < parts; i++) {
    const splitKV: GGUFKV[] = [
      { key: SPLIT_NO, type: GGUFValueType.UINT16, value: i },
      { key: SPLIT_COUNT, type: GGUFValueType.UINT16, value: parts },
      { key: SPLIT_TENSORS_COUNT, type: GGUFValueType.INT32, value: n },
    ];
    const slice = h.tensors.slice(Math.floor((i * n) / parts), Math.floor(((i + 1) * n) / parts));
    const path = splitFileName(outPrefix, i, parts);
    await writeGGUF(path, {
      kv: i === 0 ? [...base, ...splitKV] : splitKV,
      tensors: slice.map((t) => ({
        name: t.name,
        dims: t.dims,
        type: t.type,
        source: { path: srcPath, offset: h.dataOffset + t.offset, size: t.size },
      })),
    });
    paths.push(path);
  }
  return paths;
}
