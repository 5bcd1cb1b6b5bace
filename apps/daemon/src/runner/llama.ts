// The one llama.cpp engine of the daemon (node-llama-cpp, with the prebuilt CPU, CUDA and Vulkan
// binaries it ships). Loaded on first use, module and all, because it takes a second or two and a
// daemon that only lists, shows, creates or transfers models never needs it. Which backend it
// loads follows CORRAL_GPU (docs/daemon.md, "GPUs"); nothing is ever compiled or downloaded.

import { availableParallelism } from "node:os";
import type { Llama, LlamaGpuType, LlamaOptions } from "node-llama-cpp";
import { daemonConfig, type DaemonConfig, type GpuSetting } from "../config.ts";
import { StatusError } from "../errors.ts";

let engine: Promise<Llama> | undefined;

/** Threads ggml may use at most; a model's own context may use fewer (see threadsFor). */
export function maxThreads(config: Pick<DaemonConfig, "numThreads"> = daemonConfig()): number {
  return config.numThreads ?? availableParallelism();
}

export function llamaEngine(): Promise<Llama> {
  engine ??= loadEngine(daemonConfig().gpu).catch((e: unknown) => {
    engine = undefined;
    throw e;
  });
  return engine;
}

/** The GPU backends the prebuilt binaries cover. */
export type GpuBackend = Exclude<LlamaGpuType, false>;

/** What a backend needs on the machine, for the line that says why it was not used. */
const NEEDS: Record<string, string> = {
  cuda: "no NVIDIA driver with the CUDA runtime was found",
  vulkan: "no Vulkan loader (libvulkan) was found",
};

const BACKEND_NAMES: Record<string, string> = { cuda: "CUDA", vulkan: "Vulkan", metal: "Metal" };

/**
 * Which binaries to try, best first, for a CORRAL_GPU setting and the GPU backends whose libraries
 * the machine has: `cpu` tries none, `auto` tries each present one and falls back to the CPU, a
 * named backend is tried alone and never falls back (a demand that quietly ran on the CPU would
 * hide the problem), so one that is not present is refused at once.
 */
export function enginePlan(setting: GpuSetting, present: readonly GpuBackend[]): { tryGpus: GpuBackend[]; cpuFallback: boolean } | { refuse: string } {
  if (setting === "cpu") return { tryGpus: [], cpuFallback: true };
  if (setting === "auto") return { tryGpus: [...present], cpuFallback: true };
  if (!present.includes(setting)) return { refuse: refusal(setting, NEEDS[setting]!) };
  return { tryGpus: [setting], cpuFallback: false };
}

function refusal(backend: GpuBackend, why: string): string {
  return `CORRAL_GPU=${backend}: the ${BACKEND_NAMES[backend] ?? backend} backend cannot be used: ${why}; set CORRAL_GPU=auto or cpu`;
}

/** The one line `auto` logs when it runs on the CPU: why no GPU backend was used. */
export function cpuFallbackLine(present: readonly GpuBackend[], failed: readonly GpuBackend[]): string {
  const why = failed.length
    ? failed.map((g) => `the ${BACKEND_NAMES[g] ?? g} binary does not load on this system (a driver or library it needs is missing or too old)`).join("; ")
    : present.length === 0
      ? "no GPU found (no NVIDIA driver with the CUDA runtime, no Vulkan loader)"
      : "no GPU backend loaded";
  return `running models on the CPU: ${why} (CORRAL_GPU=auto)`;
}

async function loadEngine(setting: GpuSetting): Promise<Llama> {
  const { getLlama, getLlamaGpuTypes, LlamaLogLevel } = await import("node-llama-cpp");
  const options = (gpu: LlamaGpuType): LlamaOptions => ({
    gpu,
    // Never compile or download: the prebuilt binaries are what we ship and test.
    build: "never",
    // Why a binary was passed over is reported here, in one line, not by the library.
    progressLogs: false,
    // The default of max(cores, 4) oversubscribes small machines and is ~30× slower.
    maxThreads: maxThreads(),
    logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) process.stderr.write(`llama.cpp: ${message.trimEnd()}\n`);
    },
  });
  // Which GPU libraries the machine has is a look for files: milliseconds, no binary loaded.
  const found: LlamaGpuType[] = setting === "cpu" ? [] : await getLlamaGpuTypes("supported").catch(() => []);
  const present = found.filter((t): t is GpuBackend => t !== false);
  const plan = enginePlan(setting, present);
  if ("refuse" in plan) {
    reportOnce(plan.refuse);
    throw new StatusError(500, plan.refuse);
  }
  const failed: GpuBackend[] = [];
  for (const gpu of plan.tryGpus) {
    try {
      return await announce(await getLlama(options(gpu)));
    } catch {
      // The library's error names no cause; the line below does.
      failed.push(gpu);
    }
  }
  if (!plan.cpuFallback) {
    const line = refusal(failed[0]!, "its prebuilt binary does not load on this system (a driver or library it needs is missing or too old)");
    reportOnce(line);
    throw new StatusError(500, line);
  }
  if (setting === "auto") process.stderr.write(`${cpuFallbackLine(present, failed)}\n`);
  return getLlama(options(false));
}

let reported = false;
/** An explicit backend that cannot load fails every request; the log says so once. */
function reportOnce(line: string): void {
  if (reported) return;
  reported = true;
  process.stderr.write(`${line}\n`);
}

/** One line on which GPU models run, with its memory, for whoever reads the daemon's log. */
async function announce(llama: Llama): Promise<Llama> {
  const [names, vram] = await Promise.all([llama.getGpuDeviceNames().catch(() => []), llama.getVramState().catch(() => undefined)]);
  const gib = vram ? ` (${(vram.total / 2 ** 30).toFixed(1)} GiB VRAM)` : "";
  const gpu = llama.gpu === false ? "cpu" : llama.gpu;
  process.stderr.write(`running models on ${BACKEND_NAMES[gpu] ?? gpu}: ${names.join(", ") || "unnamed device"}${gib}\n`);
  return llama;
}

/**
 * Threads for one model's context. Below ~50 MB the work per token is so small that a second
 * thread only adds synchronisation (measured 10× slower on 2 cores), so tiny models get one.
 */
export function threadsFor(modelBytes: number, requested?: number): number {
  if (requested !== undefined && requested > 0) return Math.min(requested, maxThreads());
  if (daemonConfig().numThreads !== undefined) return maxThreads();
  return modelBytes < 50 * 1024 * 1024 ? 1 : maxThreads();
}
