// POST /api/create's work (docs/daemon.md, "Create"): resolve the base layers (another model, or uploaded GGUF
// files), add the Modelfile's layers, write the config and finally the manifest. New blobs are
// written as they are made; if anything fails they are removed again together with the request's
// uploads that no model references, so a failed create leaves the store as it was.

import { ModelName } from "@corral/shared/name";
import { MediaType, encodeConfig, encodeManifest, manifestDigests, parseConfig, parseLayerJSON, type Descriptor, type Manifest, type ModelConfig } from "@corral/shared/manifest";
import { goJSON } from "@corral/shared/gojson";
import { humanNumber } from "@corral/shared/format";
import { readGGUFHeader, architecture, parameterCount, ggufNumber, ggufString } from "@corral/shared/gguf/index";
import { fileTypeName } from "@corral/shared/gguf/types";
import { badRequest, notFound, StatusError, type Progress } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { detectTemplate } from "./template-detect.ts";
import { inspectGGUF, joinSplitSets, looksLikeGGUF, type GGUFFile } from "./gguf-files.ts";
import { checkParameters } from "./parameters.ts";
import { checkTemplate } from "./template-check.ts";
import { importAdapter, importCheckpoint, isAdapterUpload, isCheckpointUpload } from "./convert/import.ts";
import type { CreateRequest } from "./request.ts";
import { parseQuantType } from "./quantize/types.ts";
import { quantizeModelLayers } from "./quantize/quantize.ts";

interface Layer extends Descriptor {
  /** The progress line for this layer; undefined for none. */
  status?: string;
}

const MESSAGE_ROLES = new Set(["system", "user", "assistant", "tool"]);

export interface CreateModelOptions {
  /** The model the manifest is written as. */
  name: ModelName;
  progress: (p: Progress) => void;
  signal?: AbortSignal;
}

export async function createModel(store: Store, req: CreateRequest, opts: CreateModelOptions): Promise<void> {
  const { name, progress, signal } = opts;
  const created: string[] = [];
  const uploads = [...Object.values(req.files ?? {}), ...Object.values(req.adapters ?? {}), ...Object.values(req.draft_files ?? {})];
  try {
    const parameters = req.parameters ? checkParameters(req.parameters) : undefined;
    if (req.template) checkTemplate(req.template);
    const messages = req.messages?.map((m, i) => {
      if (!MESSAGE_ROLES.has(m.role)) throw badRequest(`messages[${i}].role must be one of "system", "user", "assistant" or "tool", got "${m.role}"`);
      return { role: m.role, content: m.content };
    });
    // Checked before anything streams, so an unknown type is a plain 400.
    const quantType = req.quantize ? parseQuantType(req.quantize) : undefined;

    const { layers, inherited } = req.from
      ? await layersFromModel(store, req.from)
      : await layersFromFiles(store, req, progress, created);
    if (quantType) await quantizeModelLayers(store.blobs, layers, { quantize: quantType, progress, created, signal });

    const addBlob = async (mediaType: string, data: string | Buffer): Promise<Layer> => {
      const r = await store.blobs.writeBytes(data);
      if (r.created) created.push(r.digest);
      return { mediaType, digest: r.digest, size: r.size, status: `${r.created ? "creating new" : "using existing"} layer ${r.digest}` };
    };
    const replace = (mediaTypes: string[], layer: Layer): void => {
      for (let i = layers.length - 1; i >= 0; i--) if (mediaTypes.includes(layers[i]!.mediaType)) layers.splice(i, 1);
      layers.push(layer);
    };

    if (req.adapters && isAdapterUpload(Object.keys(req.adapters))) {
      layers.push(await importAdapter(store, req.adapters, { layers, progress, created }));
    } else if (req.adapters && Object.keys(req.adapters).length > 0) {
      if (Object.keys(req.adapters).length > 1) throw badRequest("only one adapter is currently supported");
      for (const [fname, digest] of Object.entries(req.adapters)) {
        const f = await inspectGGUF(store.blobs, fname, digest);
        if (f.mediaType !== MediaType.adapter) {
          throw badRequest(`ADAPTER ${fname}: not a LoRA adapter (general.type is "${ggufString(f.header, "general.type") ?? ""}", expected "adapter")`);
        }
        layers.push({ mediaType: MediaType.adapter, digest: f.digest, size: f.size, status: `using existing layer ${f.digest}` });
      }
    }

    if (req.draft_files) replace([MediaType.draft], await draftLayer(store, req.draft_files));

    if (req.template) {
      replace([MediaType.template, MediaType.prompt], await addBlob(MediaType.template, req.template));
    }
    if (req.system) replace([MediaType.system], await addBlob(MediaType.system, req.system));
    const licenses = typeof req.license === "string" ? (req.license ? [req.license] : []) : (req.license ?? []);
    for (const l of licenses) layers.push(await addBlob(MediaType.license, l));

    // Parameters merge with the inherited ones key by key; lists are replaced whole (docs/daemon.md, "Create").
    const merged: Record<string, unknown> = { ...(parameters ?? {}) };
    const oldParams = layers.find((l) => l.mediaType === MediaType.params);
    if (oldParams) {
      const old = parseLayerJSON(await store.readBlobText(oldParams.digest), "parameters layer") as Record<string, unknown>;
      for (const [k, v] of Object.entries(old)) if (!(k in merged)) merged[k] = v;
    }
    if (Object.keys(merged).length > 0) {
      replace([MediaType.params], await addBlob(MediaType.params, goJSON(merged, { sortKeys: true, newline: true })));
    }
    if (messages && messages.length > 0) {
      replace([MediaType.messages], await addBlob(MediaType.messages, goJSON(messages, { newline: true })));
    }

    const config = await buildConfig(store, layers, inherited);
    // The request's renderer, parser and requires win over the base model's, as in Ollama.
    for (const k of ["renderer", "parser", "requires"] as const) if (req[k]) config[k] = req[k];
    const configBlob = await store.blobs.writeBytes(encodeConfig(config));
    if (configBlob.created) created.push(configBlob.digest);

    for (const l of layers) if (l.status) progress({ status: l.status });

    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.manifestV2,
      config: { mediaType: MediaType.config, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map(({ status: _status, ...d }) => d),
    };
    progress({ status: "writing manifest" });
    await store.exclusive(async () => {
      const target = await store.manifests.canonicalize(name);
      const previous = await store.manifests.read(target).catch(() => undefined);
      await store.putManifest(target, encodeManifest(manifest), manifest);
      // Uploads that no layer kept (split shards that were merged) go too, as do blobs this create
      // made on the way (the F16 layer a quantized import started from) and the blobs only the
      // replaced manifest named.
      await store.dropUnreferenced([...uploads, ...created, ...(previous ? manifestDigests(previous.manifest) : [])]);
    });
    progress({ status: "success" });
  } catch (e) {
    await store.exclusive(() => store.dropUnreferenced([...created, ...uploads])).catch(() => undefined);
    throw e;
  }
}

/**
 * The DRAFT model's layer (docs/daemon.md, "Create"): one GGUF model, stored under the draft media
 * type. This runtime keeps it with the model (it is pushed and pulled like any layer) but does not
 * decode speculatively with it; loading the model says so in the log.
 */
async function draftLayer(store: Store, files: Record<string, string>): Promise<Layer> {
  const names = Object.keys(files).filter((n) => !isCompanionFile(n));
  if (names.length !== 1) throw badRequest(`DRAFT must be one GGUF model file, got ${names.length}: ${names.join(", ")}`);
  const f = await inspectGGUF(store.blobs, names[0]!, files[names[0]!]!);
  if (f.mediaType !== MediaType.model) throw badRequest(`DRAFT ${names[0]}: not a model (general.type is "${ggufString(f.header, "general.type") ?? ""}")`);
  return { mediaType: MediaType.draft, digest: f.digest, size: f.size, status: `using existing layer ${f.digest}` };
}

/** Base layers from another model (docs/daemon.md, "Create"): every layer of an existing model, marked as coming from it. */
async function layersFromModel(store: Store, from: string): Promise<{ layers: Layer[]; inherited?: ModelConfig }> {
  const name = ModelName.parse(from);
  if (!name.isValid()) throw badRequest("invalid model name");
  const base = await store.find(name);
  if (!base) throw notFound(`base model '${name.shortest()}' not found; create or pull it first`);
  const shortest = base.name.shortest();
  const layers: Layer[] = base.manifest.layers.map((l) => ({
    ...l,
    from: shortest,
    status: `using existing layer ${l.digest}`,
  }));
  let inherited: ModelConfig | undefined;
  if (base.manifest.config.digest) inherited = parseConfig(await store.readBlobText(base.manifest.config.digest));
  return inherited ? { layers, inherited } : { layers };
}

/** Configuration and tokenizer files that come with weights: JSON, a Jinja chat template, a SentencePiece model. */
function isCompanionFile(name: string): boolean {
  return /\.(json|jinja)$/.test(name) || /(^|\/)tokenizer\.model$/.test(name);
}

/** The GGUF branch (docs/daemon.md, "Create"); safetensors and PyTorch directories are converted by their own module. */
async function layersFromFiles(store: Store, req: CreateRequest, progress: (p: Progress) => void, created: string[]): Promise<{ layers: Layer[]; inherited?: ModelConfig }> {
  const files = req.files ?? {};
  let names = Object.keys(files).sort();
  if (names.length === 0) throw badRequest("neither 'from' or 'files' was specified");
  if (isCheckpointUpload(names)) return { layers: await importCheckpoint(store, files, progress, created) };
  // Clients send a GGUF folder's configuration and tokenizer files along (as Ollama's does); the
  // GGUF carries all of it, so they make no layer, and the upload cleanup removes them.
  const weights = names.filter((n) => !isCompanionFile(n));
  if (weights.length > 0) names = weights;
  let gguf = names.some((n) => n.endsWith(".gguf"));
  if (!gguf) {
    for (const n of names) {
      if (await looksLikeGGUF(store.blobs.path(files[n]!))) {
        gguf = true;
        break;
      }
    }
  }
  if (!gguf) throw badRequest(`unknown type: ${names.join(", ")} ${names.length === 1 ? "is" : "are"} neither GGUF nor safetensors`);

  let inspected: GGUFFile[] = [];
  for (const n of names) {
    progress({ status: "parsing GGUF" });
    inspected.push(await inspectGGUF(store.blobs, n, files[n]!));
  }
  inspected = await joinSplitSets(store.blobs, inspected, progress, created);

  // Model layers first, then projectors and adapters (docs/protocol.md, "Manifests and media types"), whatever the file names' order.
  const rank = (mt: string): number => [MediaType.model, MediaType.projector, MediaType.adapter].indexOf(mt as never);
  inspected.sort((a, b) => rank(a.mediaType) - rank(b.mediaType));
  const layers: Layer[] = [];
  const extra: Layer[] = [];
  for (const f of inspected) {
    layers.push({ mediaType: f.mediaType, digest: f.digest, size: f.size, status: `using existing layer ${f.digest}` });
    const chat = ggufString(f.header, "tokenizer.chat_template");
    if (chat && extra.length === 0 && f.mediaType !== "application/vnd.ollama.image.projector") {
      const found = detectTemplate(chat);
      if (found) {
        const t = await store.blobs.writeBytes(found.template);
        if (t.created) created.push(t.digest);
        extra.push({ mediaType: MediaType.template, digest: t.digest, size: t.size, status: `using autodetected template ${found.name}` });
        if (found.parameters) {
          const p = await store.blobs.writeBytes(goJSON(found.parameters, { sortKeys: true, newline: true }));
          if (p.created) created.push(p.digest);
          extra.push({ mediaType: MediaType.params, digest: p.digest, size: p.size });
        }
      }
    }
  }
  if (!layers.some((l) => l.mediaType === MediaType.model)) {
    throw badRequest(`no model among the files: ${names.join(", ")} ${names.length === 1 ? "is" : "are"} only adapters or projectors`);
  }
  return { layers: [...layers, ...extra] };
}

/** The config blob (docs/protocol.md, "Config blob"): derived from the GGUF model layers; earlier layers win, families accumulate. */
async function buildConfig(store: Store, layers: Layer[], inherited?: ModelConfig): Promise<ModelConfig> {
  const config: ModelConfig = {
    model_format: "",
    model_family: "",
    model_families: null,
    model_type: "",
    file_type: "",
    architecture: "amd64",
    os: "linux",
  };
  for (const l of layers) {
    if (l.mediaType !== MediaType.model && l.mediaType !== MediaType.draft) continue;
    let h;
    try {
      h = await readGGUFHeader(store.blobs.path(l.digest));
    } catch (e) {
      throw new StatusError(500, `reading ${l.mediaType === MediaType.draft ? "draft" : "model"} layer ${l.digest}: ${(e as Error).message}`);
    }
    const arch = architecture(h);
    // A draft model (new or inherited) is described in the config, the way Ollama records it.
    if (l.mediaType === MediaType.draft) {
      config.draft = { model_format: "gguf", architecture: arch };
      continue;
    }
    config.model_format ||= "gguf";
    config.model_family ||= arch;
    config.model_families = [...(config.model_families ?? []), arch];
    config.model_type ||= humanNumber(parameterCount(h));
    config.file_type ||= fileTypeName(ggufNumber(h, "general.file_type"));
  }
  if (inherited) {
    for (const k of ["renderer", "parser", "requires", "capabilities"] as const) {
      if (inherited[k] !== undefined) (config as unknown as Record<string, unknown>)[k] = inherited[k];
    }
    if (inherited.model_format) config.model_format = inherited.model_format;
  }
  return config;
}
