// The one llama.cpp engine of the daemon (node-llama-cpp, CPU build shipped as a prebuilt
// binary). Loaded on first use, module and all, because it takes a second or two and a daemon
// that only lists, shows, creates or transfers models never needs it.

import { availableParallelism } from "node:os";
import type { Llama } from "node-llama-cpp";
import { daemonConfig, type DaemonConfig } from "../config.ts";

let engine: Promise<Llama> | undefined;

/** Threads ggml may use at most; a model's own context may use fewer (see threadsFor). */
export function maxThreads(config: Pick<DaemonConfig, "numThreads"> = daemonConfig()): number {
  return config.numThreads ?? availableParallelism();
}

export function llamaEngine(): Promise<Llama> {
  engine ??= loadEngine().catch((e: unknown) => {
    engine = undefined;
    throw e;
  });
  return engine;
}

async function loadEngine(): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  return getLlama({
    gpu: false,
    // Never compile or download: the prebuilt binary is what we ship and test.
    build: "never",
    // The default of max(cores, 4) oversubscribes small machines and is ~30× slower.
    maxThreads: maxThreads(),
    logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) process.stderr.write(`llama.cpp: ${message.trimEnd()}\n`);
    },
  });
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
