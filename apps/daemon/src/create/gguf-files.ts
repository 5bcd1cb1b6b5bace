// The GGUF branch of create (docs/daemon.md, "Create"): read each uploaded file's header, refuse what llama.cpp could
// not load, classify it as model, projector or adapter, and join split sets into one layer.

import { open, rm, stat } from "node:fs/promises";
import { sha256File } from "@corral/shared/digest";
import { GGUFError, readGGUFHeader, validateGGUFLayout, ggufString, ggufNumber, architecture, type GGUFHeader } from "@corral/shared/gguf/index";
import { splitInfo, planSplitMerge, mergeSplitGGUF, SplitGGUFError } from "@corral/shared/gguf/split";
import { MediaType } from "@corral/shared/manifest";
import { badRequest, type Progress } from "../errors.ts";
import type { BlobStore } from "../store/blobs.ts";

export interface GGUFFile {
  /** Transport name from the request, e.g. "model.gguf". */
  name: string;
  digest: string;
  size: number;
  path: string;
  header: GGUFHeader;
  mediaType: string;
}

/** Reads and checks one uploaded GGUF; every problem names the file. */
export async function inspectGGUF(blobs: BlobStore, name: string, digest: string): Promise<GGUFFile> {
  const path = blobs.path(digest);
  const size = await blobs.size(digest);
  if (size === undefined) throw badRequest(`${name}: blob ${digest} not found; upload it first with POST /api/blobs/${digest}`);
  let header: GGUFHeader;
  try {
    header = await readGGUFHeader(path);
    validateGGUFLayout(header, size);
  } catch (e) {
    if (e instanceof GGUFError) throw badRequest(`${name}: ${describeGGUFError(e, path)}`);
    throw e;
  }
  return { name, digest, size, path, header, mediaType: classify(header) };
}

/** The reader names the blob path; the user knows the file by its transport name. */
function describeGGUFError(e: GGUFError, blobPath: string): string {
  const msg = e.message.split(blobPath).join("").replace(/^[:\s]+/, "");
  if (/magic/i.test(msg)) return `supplied file was not in GGUF format (${msg})`;
  return msg;
}

/** The kind of layer an uploaded GGUF is: model, projector or adapter (docs/daemon.md, "Create"). */
export function classify(h: GGUFHeader): string {
  const type = ggufString(h, "general.type");
  if (type === "adapter") return MediaType.adapter;
  if (type === "projector" || type === "mmproj") return MediaType.projector;
  const arch = architecture(h);
  const blocks = ggufNumber(h, `${arch}.block_count`) ?? 0;
  const visionBlocks = ggufNumber(h, `${arch}.vision.block_count`) ?? 0;
  if (blocks === 0 && visionBlocks > 0) return MediaType.projector;
  if (arch === "clip" && blocks === 0) {
    const hasVision = h.kv.get(`${arch}.has_vision_encoder`)?.value === true;
    const hasAudio = h.kv.get(`${arch}.has_audio_encoder`)?.value === true;
    if (hasVision || hasAudio) return MediaType.projector;
  }
  return MediaType.model;
}

/** Quick check of the first bytes, for files whose name does not end in .gguf. */
export async function looksLikeGGUF(path: string): Promise<boolean> {
  const fh = await open(path, "r").catch(() => undefined);
  if (!fh) return false;
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return bytesRead === 4 && (buf.toString("latin1") === "GGUF" || buf.toString("latin1") === "FUGG");
  } finally {
    await fh.close();
  }
}

/**
 * Groups split shards and merges each complete set into a single new blob, so a model is always
 * one layer whatever way it was distributed (the runner then loads one file). Files that are not
 * shards pass through unchanged.
 */
export async function joinSplitSets(
  blobs: BlobStore,
  files: GGUFFile[],
  progress: (p: Progress) => void,
  created: string[],
): Promise<GGUFFile[]> {
  const shards = files.filter((f) => (splitInfo(f.header)?.count ?? 1) > 1);
  if (shards.length === 0) return files;
  let groups;
  try {
    groups = planSplitMerge(shards.map((f) => ({ name: f.name, header: f.header, mediaType: f.mediaType })));
  } catch (e) {
    if (e instanceof SplitGGUFError) throw badRequest(e.message);
    throw e;
  }
  const out = files.filter((f) => !shards.includes(f));
  for (const group of groups) {
    const ordered = group.map((g) => shards.find((s) => s.name === g.name)!);
    const first = ordered[0]!;
    const total = ordered.reduce((n, f) => n + f.size, 0);
    progress({ status: `merging ${ordered.length} split GGUF files`, digest: first.digest, total, completed: 0 });
    const tmp = blobs.tempPath();
    try {
      try {
        await mergeSplitGGUF(ordered.map((f) => ({ path: f.path, header: f.header })), tmp);
      } catch (e) {
        if (e instanceof SplitGGUFError || e instanceof GGUFError) throw badRequest(`${first.name}: ${e.message}`);
        throw e;
      }
      const { digest } = await sha256File(tmp);
      if (await blobs.commit(tmp, digest)) created.push(digest);
      const path = blobs.path(digest);
      const size = (await stat(path)).size;
      const header = await readGGUFHeader(path);
      validateGGUFLayout(header, size);
      progress({ status: `merging ${ordered.length} split GGUF files`, digest: first.digest, total, completed: total });
      out.push({ name: first.name, digest, size, path, header, mediaType: first.mediaType });
    } finally {
      await rm(tmp, { force: true });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
