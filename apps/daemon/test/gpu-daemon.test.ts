// GPU settings through a real `corral serve` on the CPU (docs/daemon.md, "GPUs"): CORRAL_GPU is
// checked before the daemon listens, `cpu` keeps every layer on the CPU whatever `num_gpu` asks,
// /api/ps says nothing is in GPU memory, a different `num_gpu` reloads the model as Ollama does
// while a negative one takes the loaded split, and a named backend that cannot load is refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlamaGpuTypes } from "node-llama-cpp";
import { corralBin, createModelFrom, debugEvents, startDaemon, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";

let daemon: Daemon;

before(async () => {
  daemon = await startDaemon({ env: { CORRAL_GPU: "cpu", CORRAL_DEBUG: "1" } });
  // num_gpu 99 asks for every layer on a GPU; CORRAL_GPU=cpu wins.
  await createModelFrom(daemon, { model: "story", path: fixtures.stories260K, extra: { template: "{{ .Prompt }}", parameters: { num_gpu: 99, temperature: 0, num_predict: 4 } } });
});

after(async () => {
  await daemon?.stop();
});

async function generate(options: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story", prompt: "Once upon a time", stream: false, options }) });
}

async function loadDuration(options: Record<string, unknown>): Promise<number> {
  const r = await generate(options);
  assert.equal(r.status, 200, await r.clone().text());
  return ((await r.json()) as { load_duration: number }).load_duration;
}

test("a CORRAL_GPU naming no backend stops serve before it listens, with one line", async () => {
  const home = await mkdtemp(join(tmpdir(), "corral-gpu-"));
  try {
    const r = spawnSync(process.execPath, [corralBin, "serve"], {
      env: { ...process.env, HOME: home, CORRAL_HOME: join(home, ".corral"), CORRAL_HOST: "127.0.0.1:0", CORRAL_GPU: "tpu" },
      encoding: "utf8",
    });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trimEnd().split("\n").at(-1), 'Error: CORRAL_GPU: "tpu" is not a backend; set CORRAL_GPU to one of auto, cuda, vulkan, cpu');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test("CORRAL_GPU=cpu: serve says so, and the model loads with no layer offloaded", async () => {
  assert.match(daemon.logs(), /^models run on the CPU \(CORRAL_GPU=cpu\)$/m);
  assert.ok((await loadDuration({})) > 0);
  const loaded = debugEvents(daemon).filter((e) => e.msg === "model loaded");
  assert.equal(loaded.length, 1);
  assert.equal(loaded[0]!["backend"], "cpu");
  assert.equal(loaded[0]!["num_gpu"], 99);
  assert.equal(loaded[0]!["gpu_layers"], 0);
  assert.equal(loaded[0]!["layers"], 6);
});

test("/api/ps: size_vram is 0 on the CPU, size is the model and its cache", async () => {
  await loadDuration({});
  const { models } = (await (await fetch(`${daemon.url}/api/ps`)).json()) as { models: Array<{ name: string; size: number; size_vram: number }> };
  const m = models.find((x) => x.name === "story:latest");
  assert.ok(m);
  assert.equal(m.size_vram, 0);
  assert.ok(m.size > 1_000_000, String(m.size));
});

test("num_gpu: a negative value takes the loaded model, another number reloads it", async () => {
  await loadDuration({});
  assert.equal(await loadDuration({ num_gpu: -1 }), 0, "num_gpu -1 matches any split");
  assert.ok((await loadDuration({ num_gpu: 0 })) > 0, "num_gpu 0 differs from the 99 it was loaded with");
  assert.equal(await loadDuration({ num_gpu: 0 }), 0);
  assert.equal(await loadDuration({ num_gpu: -5 }), 0);
  // Far more layers than the model has: capped, loads (here on the CPU).
  assert.ok((await loadDuration({ num_gpu: 1e12 })) > 0);
  const last = debugEvents(daemon).filter((e) => e.msg === "model loaded").at(-1)!;
  assert.equal(last["num_gpu"], 1e12);
  assert.equal(last["gpu_layers"], 0);
});

test("num_gpu of the wrong type is refused with Ollama's message", async () => {
  const r = await generate({ num_gpu: "all" });
  assert.equal(r.status, 500);
  assert.deepEqual(await r.json(), { error: 'option "num_gpu" must be of type integer' });
});

test("CORRAL_GPU=vulkan where Vulkan cannot load: generations fail with one line, never run on the CPU", async (t) => {
  if ((await getLlamaGpuTypes("supported")).includes("vulkan")) return t.skip("this machine has a Vulkan loader");
  const vulkan = await startDaemon({ env: { CORRAL_GPU: "vulkan" } });
  try {
    await createModelFrom(vulkan, { model: "story", path: fixtures.stories260K, extra: { template: "{{ .Prompt }}" } });
    const line = "CORRAL_GPU=vulkan: the Vulkan backend cannot be used: no Vulkan loader (libvulkan) was found; set CORRAL_GPU=auto or cpu";
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${vulkan.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story", prompt: "Once", stream: false }) });
      assert.equal(r.status, 500);
      assert.deepEqual(await r.json(), { error: line });
    }
    // The log says it once, however many requests fail.
    assert.equal(vulkan.logs().split("\n").filter((l) => l === line).length, 1);
    const { models } = (await (await fetch(`${vulkan.url}/api/ps`)).json()) as { models: unknown[] };
    assert.deepEqual(models, []);
  } finally {
    await vulkan.stop();
  }
});
