// The scheduler under a real daemon: a model limit swaps models, concurrent requests share
// sequences or wait their turn, and the keep-alive unloads idle models.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { debugEvents, startDaemon, waitForDebugEvent, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { sha256Bytes } from "@corral/shared/digest";

let daemon: Daemon;

async function create(model: string, parameters: Record<string, unknown>): Promise<void> {
  const bytes = await readFile(fixtures.stories260K);
  const digest = sha256Bytes(bytes);
  await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "POST", body: bytes });
  const r = await fetch(`${daemon.url}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model, files: { "m.gguf": digest }, template: "{{ .Prompt }}", parameters, stream: false }),
  });
  assert.equal(r.status, 200);
}

async function generate(model: string, extra: Record<string, unknown> = {}): Promise<{ response: string; eval_count: number }> {
  const r = await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model, prompt: "Once upon a time", stream: false, ...extra }) });
  assert.equal(r.status, 200);
  return (await r.json()) as { response: string; eval_count: number };
}

async function loaded(): Promise<string[]> {
  const r = (await (await fetch(`${daemon.url}/api/ps`)).json()) as { models: Array<{ name: string }> };
  return r.models.map((m) => m.name).sort();
}

before(async () => {
  // The debug log says how many of a model's sequences are in use as each generation starts.
  daemon = await startDaemon({ env: { CORRAL_MAX_LOADED_MODELS: "1", CORRAL_NUM_PARALLEL: "2", CORRAL_KEEP_ALIVE: "3s", CORRAL_DEBUG: "1" } });
  await create("one", { temperature: 0, num_predict: 16 });
  await create("two", { temperature: 0, num_predict: 8 });
});

after(async () => {
  await daemon?.stop();
});

test("with a limit of one model, asking for another unloads the first", async () => {
  await generate("one");
  assert.deepEqual(await loaded(), ["one:latest"]);
  await generate("two");
  assert.deepEqual(await loaded(), ["two:latest"]);
});

test("concurrent requests to one model run side by side and all finish with the same greedy answer", async () => {
  const seen = debugEvents(daemon).length;
  // A long answer holds one of the two sequences while the others are served; its client leaves
  // once they are done. Had they waited for it, it would have ended by itself after its 1000 tokens
  // (the greedy story has no end of text that soon), with never two sequences in use.
  const controller = new AbortController();
  const long = await fetch(`${daemon.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: "one", prompt: "Once upon a time", options: { num_predict: 1000 } }),
    signal: controller.signal,
  });
  const reader = long.body!.getReader();
  await reader.read();
  const answers = await Promise.all(Array.from({ length: 4 }, () => generate("one")));
  controller.abort();
  await reader.read().catch(() => undefined);
  for (const a of answers) assert.equal(a.response, answers[0]!.response);
  assert.equal(answers[0]!.eval_count, 16);
  const ended = await waitForDebugEvent(daemon, seen, (e) => e.msg === "generation ended" && e["eval_count"] !== 16);
  assert.equal(ended["stop_reason"], "abort", JSON.stringify(ended));
  const inUse = debugEvents(daemon).slice(seen).filter((e) => e.msg === "generation started").map((e) => e["sequences_in_use"]);
  assert.equal(inUse.length, 5);
  assert.equal(Math.max(...(inUse as number[])), 2, `sequences in use as each started: ${inUse.join(", ")}`);
});

test("concurrent requests to two models with room for one are served in turn", async () => {
  const [x, y] = await Promise.all([generate("one"), generate("two")]);
  assert.equal(x.eval_count, 16);
  assert.equal(y.eval_count, 8);
  assert.equal((await loaded()).length, 1);
});

test("an idle model is unloaded after its keep-alive", async () => {
  await generate("one", { keep_alive: "1s" });
  assert.deepEqual(await loaded(), ["one:latest"]);
  // Polled, not slept: how soon after the second the unload is done depends on the machine; a
  // model that is never unloaded is caught by the test runner's overall limit.
  while ((await loaded()).length > 0) await new Promise((r) => setTimeout(r, 100));
});

test("a keep-alive longer than Node's longest timer keeps the model loaded, up to Go's largest duration", async () => {
  const ps = async (): Promise<Array<{ name: string; expires_at: string }>> => ((await (await fetch(`${daemon.url}/api/ps`)).json()) as { models: Array<{ name: string; expires_at: string }> }).models;
  const day = 24 * 3600 * 1000;
  // 720h and 2592000 s are 30 days, past the 24.8 days a Node timer can wait: such a timer fires at
  // once, and the model was gone by the next request.
  for (const keep_alive of ["720h", 2592000, "2562047h47m16.854775807s"]) {
    await generate("one", { keep_alive });
    const models = await ps();
    assert.deepEqual(models.map((m) => m.name), ["one:latest"], `still loaded after keep_alive ${keep_alive}`);
    assert.ok(Date.parse(models[0]!.expires_at) - Date.now() > 29 * day, `expires_at ${models[0]!.expires_at} for keep_alive ${keep_alive}`);
  }
  await generate("one", { keep_alive: 0 });
  while ((await loaded()).length > 0) await new Promise((r) => setTimeout(r, 100));
});
