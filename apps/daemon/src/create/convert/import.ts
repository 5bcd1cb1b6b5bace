// The safetensors/PyTorch branch of create (docs/daemon.md, "Create"): the uploaded blobs are converted into one new
// GGUF model layer (status "converting model"), or, for ADAPTER, a GGUF LoRA layer ("converting
// adapter"). The chat template travels as tokenizer.chat_template and becomes the model's
// template: Ollama's Go template for a recognised family, the Jinja text itself otherwise.

import { rm } from "node:fs/promises";
import { sha256File } from "@corral/shared/digest";
import { goJSON } from "@corral/shared/gojson";
import { MediaType, type Descriptor } from "@corral/shared/manifest";
import { readGGUFHeader, architecture, ggufNumber, ggufString, GGUFError } from "@corral/shared/gguf/index";
import { badRequest, StatusError, type Progress } from "../../errors.ts";
import type { Store } from "../../store/store.ts";
import { detectTemplate } from "../template-detect.ts";
import { convertModel, type ConvertProgress, type ConvertResult } from "./convert-model.ts";
import { ConvertError } from "./errors.ts";
import { convertAdapter, type AdapterBase } from "./lora.ts";

export interface ImportedLayer extends Descriptor {
  status?: string;
}

const base = (name: string): string => name.slice(name.lastIndexOf("/") + 1);

/** A key ending in .safetensors makes the set safetensors; PyTorch checkpoints come with config.json. */
export function isCheckpointUpload(names: readonly string[]): boolean {
  if (names.some((n) => n.endsWith(".safetensors"))) return true;
  return names.some((n) => base(n) === "config.json") && names.some((n) => /^pytorch_model.*\.bin$|^consolidated.*\.pth$/.test(base(n)));
}

export function isAdapterUpload(names: readonly string[]): boolean {
  return names.some((n) => n.endsWith(".safetensors"));
}

/** Transport name → blob path, checking every blob is there. */
async function fileSet(store: Store, files: Record<string, string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [name, digest] of Object.entries(files)) {
    if ((await store.blobs.size(digest)) === undefined) throw badRequest(`${name}: blob ${digest} not found; upload it first with POST /api/blobs/${digest}`);
    out.set(name, store.blobs.path(digest));
  }
  return out;
}

/** Progress lines at most every 1% or 250 ms, keyed by the largest upload's digest. */
function progressReporter(status: string, key: string, progress: (p: Progress) => void): (p: ConvertProgress) => void {
  let lastAt = 0;
  let lastDone = -1;
  return ({ total, completed }) => {
    const now = Date.now();
    if (completed === total || now - lastAt >= 250 || completed - lastDone >= total / 100) {
      lastAt = now;
      lastDone = completed;
      progress({ status, digest: key, total, completed });
    }
  };
}

async function convertToBlob(
  store: Store,
  created: string[],
  run: (out: string) => Promise<ConvertResult>,
): Promise<{ digest: string; size: number; created: boolean }> {
  const tmp = store.blobs.tempPath();
  try {
    let size: number;
    try {
      ({ size } = await run(tmp));
    } catch (e) {
      if (e instanceof ConvertError) throw badRequest(e.message);
      throw e;
    }
    const { digest } = await sha256File(tmp);
    const isNew = await store.blobs.commit(tmp, digest);
    if (isNew) created.push(digest);
    return { digest, size, created: isNew };
  } finally {
    await rm(tmp, { force: true });
  }
}

function largest(files: Record<string, string>, sizes: Map<string, number>): string {
  let best = "";
  let bestSize = -1;
  for (const d of Object.values(files)) {
    const s = sizes.get(d) ?? 0;
    if (s > bestSize) [best, bestSize] = [d, s];
  }
  return best;
}

async function sizesOf(store: Store, files: Record<string, string>): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const d of Object.values(files)) m.set(d, (await store.blobs.size(d)) ?? 0);
  return m;
}

/** Converts an uploaded model directory; returns its model layer and any template/params layers. */
export async function importCheckpoint(store: Store, files: Record<string, string>, progress: (p: Progress) => void, created: string[]): Promise<ImportedLayer[]> {
  const set = await fileSet(store, files);
  const key = largest(files, await sizesOf(store, files));
  progress({ status: "converting model" });
  const blob = await convertToBlob(store, created, (out) => convertModel(set, out, progressReporter("converting model", key, progress)));
  const layers: ImportedLayer[] = [
    { mediaType: MediaType.model, digest: blob.digest, size: blob.size, status: `${blob.created ? "creating new" : "using existing"} layer ${blob.digest}` },
  ];
  const header = await readGGUFHeader(store.blobs.path(blob.digest));
  const chat = ggufString(header, "tokenizer.chat_template");
  if (chat) {
    const found = detectTemplate(chat);
    const t = await store.blobs.writeBytes(found ? found.template : chat);
    if (t.created) created.push(t.digest);
    layers.push({ mediaType: MediaType.template, digest: t.digest, size: t.size, status: found ? `using autodetected template ${found.name}` : `creating new layer ${t.digest}` });
    if (found?.parameters) {
      const p = await store.blobs.writeBytes(goJSON(found.parameters, { sortKeys: true, newline: true }));
      if (p.created) created.push(p.digest);
      layers.push({ mediaType: MediaType.params, digest: p.digest, size: p.size });
    }
  }
  return layers;
}

export interface ImportAdapterOptions {
  /** The layers so far; the adapter is converted for the model layer among them. */
  layers: readonly Descriptor[];
  progress: (p: Progress) => void;
  /** Receives the digests of blobs the conversion adds to the store. */
  created: string[];
}

/** Converts an uploaded safetensors LoRA for the model layer among `opts.layers`. */
export async function importAdapter(store: Store, adapters: Record<string, string>, opts: ImportAdapterOptions): Promise<ImportedLayer> {
  const { layers, progress, created } = opts;
  const model = layers.find((l) => l.mediaType === MediaType.model);
  if (!model) throw badRequest("ADAPTER: a safetensors adapter needs a base model (FROM) to be converted for");
  let h;
  try {
    h = await readGGUFHeader(store.blobs.path(model.digest));
  } catch (e) {
    if (e instanceof GGUFError) throw new StatusError(500, `reading base model layer ${model.digest}: ${e.message}`);
    throw e;
  }
  const arch = architecture(h);
  const baseInfo: AdapterBase = { arch, tensorDims: new Map(h.tensors.map((t) => [t.name, t.dims])) };
  const heads = ggufNumber(h, `${arch}.attention.head_count`);
  const headsKV = ggufNumber(h, `${arch}.attention.head_count_kv`);
  if (heads !== undefined) baseInfo.headCount = heads;
  if (headsKV !== undefined) baseInfo.headCountKV = headsKV;
  const set = await fileSet(store, adapters);
  const key = largest(adapters, await sizesOf(store, adapters));
  progress({ status: "converting adapter" });
  const blob = await convertToBlob(store, created, (out) => convertAdapter(set, baseInfo, out, progressReporter("converting adapter", key, progress)));
  return { mediaType: MediaType.adapter, digest: blob.digest, size: blob.size, status: `${blob.created ? "creating new" : "using existing"} layer ${blob.digest}` };
}
