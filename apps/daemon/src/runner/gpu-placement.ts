// Where a model's layers go and what must be unloaded to make room for it (docs/daemon.md, "GPUs"):
// the arithmetic of the scheduler as pure functions, so that each decision can be tested with
// sizes alone, without a GPU or a model.

import { architecture, ggufNumber, type GGUFHeader } from "@corral/shared/gguf/index";

/** Layers llama.cpp can offload: one per block, and the output layer. */
export function offloadableLayers(h: GGUFHeader): number {
  return (ggufNumber(h, `${architecture(h)}.block_count`) ?? 0) + 1;
}

/** Whether `num_gpu` names fewer layers than the model has: loaded as asked, never fitted. */
export function explicitPartialOffload(numGpu: number, totalLayers: number): boolean {
  return numGpu > 0 && numGpu < totalLayers;
}

/** What `num_gpu` asks of a load, in node-llama-cpp's terms. */
export type GpuLayers = number | { fitContext: { contextSize: number } };

/**
 * The layers to offload for `num_gpu` (Ollama's meaning): negative is "as many as fit with the
 * context", 0 is the CPU only, N offloads N layers, at most the model's (block count + output).
 * Without a GPU backend every layer stays on the CPU.
 */
export function gpuLayersFor(o: { numGpu: number; totalLayers: number; contextSize: number; gpu: boolean }): GpuLayers {
  if (!o.gpu || o.numGpu === 0) return 0;
  if (o.numGpu < 0) return { fitContext: { contextSize: o.contextSize } };
  return Math.min(o.numGpu, o.totalLayers);
}

/**
 * Whether a model loaded with `loaded` serves a request asking `wanted`: a negative `num_gpu`
 * takes whatever split is loaded, any other value must match it (else the model is reloaded).
 */
export function sameGpuRequest(loaded: number, wanted: number): boolean {
  return wanted < 0 || loaded === wanted;
}

/**
 * Bytes of a loaded model in GPU memory, for /api/ps `size_vram`: its share of the layers that
 * were offloaded. All layers give exactly `size` (shown as "100% GPU"), none give 0.
 */
export function vramBytes(size: number, gpuLayers: number, totalLayers: number): number {
  if (gpuLayers <= 0 || totalLayers <= 0) return 0;
  if (gpuLayers >= totalLayers) return size;
  return Math.round((size * gpuLayers) / totalLayers);
}

/** A loaded model as the eviction rule sees it. */
export interface Resident {
  key: string;
  /** Requests using it now; only an idle one (0) can be unloaded at once. */
  active: number;
  /** When it was last used (ms); the least recent idle one goes first. */
  lastUsed: number;
}

export interface RoomQuery {
  loaded: readonly Resident[];
  /** Loads under way, counted against the model limit. */
  loading: number;
  maxLoaded: number;
  /** Bytes of the new model's files, and the system memory free now. */
  ram: { need: number; free: number };
  /**
   * Predicted GPU bytes of the new model fully offloaded, and the GPU memory free now; absent
   * when the model is not to be offloaded by fitting (CPU backend, num_gpu 0, or an explicit
   * number of layers, which is loaded as asked).
   */
  vram?: { need: number; free: number };
}

export type RoomDecision =
  | { action: "load" }
  | { action: "unload"; key: string; reason: RoomReason }
  | { action: "wait"; reason: RoomReason };

export type RoomReason = "model limit" | "memory" | "gpu memory";

/** System memory wanted per byte of model file: weights plus cache and buffers. */
export const RAM_HEADROOM = 1.2;
/** Share of free GPU memory a new model may be predicted to take (Ollama leaves a fifth spare). */
export const VRAM_USABLE = 0.8;

/**
 * What to do before loading a model: load it, unload the least recently used idle model, or wait
 * for a busy one to finish. Memory limits only count while other models are loaded: a model that
 * does not fit alone is still loaded (split between GPU and CPU, or on the CPU).
 */
export function roomFor(q: RoomQuery): RoomDecision {
  const others = q.loaded.length > 0;
  let reason: RoomReason | undefined;
  if (q.loaded.length + q.loading >= q.maxLoaded) reason = "model limit";
  else if (others && q.ram.need * RAM_HEADROOM > q.ram.free) reason = "memory";
  else if (others && q.vram && q.vram.need > q.vram.free * VRAM_USABLE) reason = "gpu memory";
  if (reason === undefined) return { action: "load" };
  const idle = q.loaded.filter((r) => r.active === 0).sort((a, b) => a.lastUsed - b.lastUsed)[0];
  return idle ? { action: "unload", key: idle.key, reason } : { action: "wait", reason };
}
