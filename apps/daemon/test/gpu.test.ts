// GPU use without a GPU: the CORRAL_GPU setting, which binaries each setting tries, where
// `num_gpu` puts a model's layers, what /api/ps reports as in GPU memory, how `corral ps` prints
// the split, and which model the scheduler unloads for room (docs/daemon.md, "GPUs").
import { test } from "node:test";
import assert from "node:assert/strict";
import { readGGUFHeader } from "@corral/shared/gguf/index";
import { ConfigError, loadConfig, parseGpuSetting } from "../src/config.ts";
import { cpuFallbackLine, enginePlan } from "../src/runner/llama.ts";
import { explicitPartialOffload, gpuLayersFor, offloadableLayers, roomFor, sameGpuRequest, vramBytes, type RoomQuery } from "../src/runner/gpu-placement.ts";
import { processorLabel } from "../src/cli/commands/ps.ts";
import { fixtures } from "../../../test/fixtures.ts";

test("CORRAL_GPU: auto by default, any case, and a bad value is one line naming the variable and the choices", () => {
  assert.equal(loadConfig({}).gpu, "auto");
  assert.equal(loadConfig({ CORRAL_GPU: "CPU" }).gpu, "cpu");
  assert.equal(loadConfig({ CORRAL_GPU: " 'vulkan' " }).gpu, "vulkan");
  assert.equal(loadConfig({ CORRAL_GPU: "" }).gpu, "auto");
  assert.equal(parseGpuSetting("cuda"), "cuda");
  const bad = loadConfig({ CORRAL_GPU: "rocm" });
  assert.throws(
    () => bad.gpu,
    (e: unknown) => e instanceof ConfigError && e.message === 'CORRAL_GPU: "rocm" is not a backend; set CORRAL_GPU to one of auto, cuda, vulkan, cpu',
  );
  // Only what reads it fails: the rest of the configuration is still there for other commands.
  assert.equal(bad.contextLength, 4096);
});

test("engine plan: cpu tries no GPU, auto tries each present one then the CPU, a named one alone", () => {
  assert.deepEqual(enginePlan("cpu", ["cuda", "vulkan"]), { tryGpus: [], cpuFallback: true });
  assert.deepEqual(enginePlan("auto", ["cuda", "vulkan"]), { tryGpus: ["cuda", "vulkan"], cpuFallback: true });
  assert.deepEqual(enginePlan("auto", []), { tryGpus: [], cpuFallback: true });
  assert.deepEqual(enginePlan("vulkan", ["cuda", "vulkan"]), { tryGpus: ["vulkan"], cpuFallback: false });
  assert.deepEqual(enginePlan("cuda", ["vulkan"]), {
    refuse: "CORRAL_GPU=cuda: the CUDA backend cannot be used: no NVIDIA driver with the CUDA runtime was found; set CORRAL_GPU=auto or cpu",
  });
  assert.deepEqual(enginePlan("vulkan", []), {
    refuse: "CORRAL_GPU=vulkan: the Vulkan backend cannot be used: no Vulkan loader (libvulkan) was found; set CORRAL_GPU=auto or cpu",
  });
});

test("auto's fallback line says why the CPU is used", () => {
  assert.equal(cpuFallbackLine([], []), "running models on the CPU: no GPU found (no NVIDIA driver with the CUDA runtime, no Vulkan loader) (CORRAL_GPU=auto)");
  assert.equal(
    cpuFallbackLine(["cuda", "vulkan"], ["cuda", "vulkan"]),
    "running models on the CPU: the CUDA binary does not load on this system (a driver or library it needs is missing or too old); the Vulkan binary does not load on this system (a driver or library it needs is missing or too old) (CORRAL_GPU=auto)",
  );
});

test("num_gpu: negative fits what it can with the context, 0 is the CPU, N is N layers at most all, no GPU is the CPU", () => {
  const o = { totalLayers: 23, contextSize: 8192, gpu: true };
  assert.deepEqual(gpuLayersFor({ ...o, numGpu: -1 }), { fitContext: { contextSize: 8192 } });
  assert.deepEqual(gpuLayersFor({ ...o, numGpu: -7 }), { fitContext: { contextSize: 8192 } });
  assert.equal(gpuLayersFor({ ...o, numGpu: 0 }), 0);
  assert.equal(gpuLayersFor({ ...o, numGpu: 10 }), 10);
  assert.equal(gpuLayersFor({ ...o, numGpu: 23 }), 23);
  assert.equal(gpuLayersFor({ ...o, numGpu: 999 }), 23);
  assert.equal(gpuLayersFor({ ...o, numGpu: Number.MAX_SAFE_INTEGER * 4 }), 23);
  for (const numGpu of [-1, 0, 10, 999]) assert.equal(gpuLayersFor({ ...o, numGpu, gpu: false }), 0);
  assert.equal(explicitPartialOffload(10, 23), true);
  assert.equal(explicitPartialOffload(23, 23), false);
  assert.equal(explicitPartialOffload(-1, 23), false);
  assert.equal(explicitPartialOffload(0, 23), false);
});

test("num_gpu: a negative request takes the loaded split, another number reloads", () => {
  assert.equal(sameGpuRequest(-1, -1), true);
  assert.equal(sameGpuRequest(0, -1), true);
  assert.equal(sameGpuRequest(12, -3), true);
  assert.equal(sameGpuRequest(-1, 0), false);
  assert.equal(sameGpuRequest(-1, 12), false);
  assert.equal(sameGpuRequest(12, 13), false);
  assert.equal(sameGpuRequest(0, 0), true);
});

test("offloadable layers are the blocks and the output layer", async () => {
  // stories260K has 5 blocks.
  assert.equal(offloadableLayers(await readGGUFHeader(fixtures.stories260K)), 6);
});

test("size_vram is the offloaded layers' share: all of size, none, or a rounded part", () => {
  assert.equal(vramBytes(1000, 0, 23), 0);
  assert.equal(vramBytes(1000, 23, 23), 1000);
  assert.equal(vramBytes(1000, 30, 23), 1000);
  assert.equal(vramBytes(1000, 10, 23), 435);
  assert.equal(vramBytes(1000, 5, 0), 0);
  assert.equal(processorLabel(1000, vramBytes(1000, 23, 23)), "100% GPU");
  assert.equal(processorLabel(1000, vramBytes(1000, 0, 23)), "100% CPU");
  // 565/1000*100 is 56.49999999999999 in float64, as in Go: 56, not 57.
  assert.equal(processorLabel(1000, vramBytes(1000, 10, 23)), "56%/44% CPU/GPU");
});

test("PROCESSOR: Ollama's cases and rounding (halves away from zero, whole percents that add to 100)", () => {
  assert.equal(processorLabel(0, 0), "100% CPU");
  assert.equal(processorLabel(7_000_000_000, 7_000_000_000), "100% GPU");
  assert.equal(processorLabel(0, 5), "Unknown");
  assert.equal(processorLabel(100, 101), "Unknown");
  assert.equal(processorLabel(1000, 590), "41%/59% CPU/GPU");
  assert.equal(processorLabel(200, 1), "100%/0% CPU/GPU"); // 99.5% on the CPU rounds up
  assert.equal(processorLabel(200, 199), "1%/99% CPU/GPU"); // 0.5% rounds up, not to even
  assert.equal(processorLabel(1000, 999), "0%/100% CPU/GPU");
  assert.equal(processorLabel(3, 1), "67%/33% CPU/GPU");
  assert.equal(processorLabel(3, 2), "33%/67% CPU/GPU");
  assert.equal(processorLabel(8, 1), "88%/12% CPU/GPU"); // 87.5 rounds up
  assert.equal(processorLabel(8, 7), "13%/87% CPU/GPU"); // 12.5 rounds up
});

const MB = 1_000_000;
const GB = 1_000_000_000;

function query(over: Partial<RoomQuery>): RoomQuery {
  return { loaded: [], loading: 0, maxLoaded: 5, ram: { need: 1 * GB, free: 100 * GB }, ...over };
}

test("room: a model that fits loads; the first model loads even when it does not fit (split or on the CPU)", () => {
  assert.deepEqual(roomFor(query({ vram: { need: 10 * GB, free: 80 * GB } })), { action: "load" });
  assert.deepEqual(roomFor(query({ ram: { need: 500 * GB, free: 1 * GB }, vram: { need: 500 * GB, free: 1 * GB } })), { action: "load" });
});

test("room: GPU memory short unloads the least recently used idle model first", () => {
  const loaded = [
    { key: "busy-old", active: 1, lastUsed: 100 },
    { key: "idle-new", active: 0, lastUsed: 300 },
    { key: "idle-old", active: 0, lastUsed: 200 },
  ];
  // 8 GB wanted, 9 GB free: more than the 80% of free memory a load may take.
  assert.deepEqual(roomFor(query({ loaded, vram: { need: 8 * GB, free: 9 * GB } })), { action: "unload", key: "idle-old", reason: "gpu memory" });
  // 7.2 GB of 9 GB is exactly 80%: it fits.
  assert.deepEqual(roomFor(query({ loaded, vram: { need: 7.2 * GB, free: 9 * GB } })), { action: "load" });
  // No GPU room asked (CPU, num_gpu 0, or an explicit partial split): GPU memory does not count.
  assert.deepEqual(roomFor(query({ loaded })), { action: "load" });
});

test("room: when every loaded model is busy the load waits; system memory and the model limit still count", () => {
  const busy = [
    { key: "a", active: 2, lastUsed: 1 },
    { key: "b", active: 1, lastUsed: 2 },
  ];
  assert.deepEqual(roomFor(query({ loaded: busy, vram: { need: 20 * GB, free: 10 * GB } })), { action: "wait", reason: "gpu memory" });
  const idle = [
    { key: "a", active: 0, lastUsed: 5 },
    { key: "b", active: 0, lastUsed: 2 },
  ];
  assert.deepEqual(roomFor(query({ loaded: idle, ram: { need: 900 * MB, free: 1 * GB } })), { action: "unload", key: "b", reason: "memory" });
  assert.deepEqual(roomFor(query({ loaded: idle, maxLoaded: 2 })), { action: "unload", key: "b", reason: "model limit" });
  assert.deepEqual(roomFor(query({ loaded: idle.slice(0, 1), loading: 1, maxLoaded: 2 })), { action: "unload", key: "a", reason: "model limit" });
});
