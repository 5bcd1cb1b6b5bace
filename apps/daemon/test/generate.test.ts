// Running models through the native API with the official `ollama` npm client: generate and chat
// (streamed and not), embed, ps, load/unload, option precedence, JSON format, and refusing a
// GGUF that would crash llama.cpp while the daemon keeps serving.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Ollama } from "ollama";
import { createModelFrom, startDaemon, runCLI, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { isJSONPrefix } from "./support/json-prefix.ts";
import { readGGUFHeader, writeGGUF, GGUFValueType, type GGUFKV } from "@corral/shared/gguf/index";
import { join } from "node:path";

// The known greedy continuation of "Once upon a time" (with BOS) for stories260K
// (test/fixtures/PROVENANCE.md; computed independently with a NumPy forward pass).
const GOLDEN =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do.';

let daemon: Daemon;
let ollama: Ollama;

function createFrom(path: string, model: string, extra: Record<string, unknown> = {}): Promise<void> {
  return createModelFrom(daemon, { model, path, extra });
}

before(async () => {
  daemon = await startDaemon();
  ollama = new Ollama({ host: daemon.url });
  await createFrom(fixtures.stories260K, "story", {
    template: "{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}",
    parameters: { temperature: 0, num_predict: 12 },
  });
  await createFrom(fixtures.stories260K, "story-chat", {
    template: "{{ range .Messages }}{{ .Content }} {{ end }}",
    system: "Once upon a time",
    parameters: { temperature: 0, num_predict: 8 },
  });
});

after(async () => {
  await daemon?.stop();
});

test("greedy raw generation continues with the known story", async () => {
  const r = await ollama.generate({ model: "story", prompt: "Once upon a time", raw: true, stream: false, options: { num_predict: 60 } });
  assert.ok(GOLDEN.startsWith((r.response ?? "")), `got ${JSON.stringify((r.response ?? ""))}`);
  assert.ok((r.response ?? "").length > 150);
  assert.equal(r.done, true);
  assert.equal(r.done_reason, "length");
  assert.equal(r.eval_count, 60);
  assert.equal(r.prompt_eval_count, 5, "BOS + 4 prompt tokens");
  assert.ok(r.total_duration > 0 && r.eval_duration > 0 && r.prompt_eval_duration > 0);
  assert.equal((r as unknown as Record<string, unknown>)["context"], undefined, "raw mode returns no context");
});

test("without num_predict a generation stops at ten context windows, as Ollama's does", async () => {
  // num_predict -1 (open-ended) with a 32-token window: the greedy story has no end of text within
  // 320 tokens, so only the bound ends it.
  const r = await ollama.generate({ model: "story", prompt: "Once upon a time", raw: true, stream: false, options: { num_predict: -1, num_ctx: 32 } });
  assert.equal(r.done_reason, "length");
  assert.equal(r.eval_count, 320);
});

test("the first generated token keeps its leading space, as Ollama writes it", async () => {
  // Autocomplete clients join prompt and answer: "…there was a" + " little girl", not "alittle".
  const prompt = "Once upon a time, there was a";
  const story = `Once upon a time${GOLDEN}`;
  const r = await ollama.generate({ model: "story", prompt, raw: true, stream: false, options: { num_predict: 3 } });
  const want = r.response ?? "";
  assert.ok(want.startsWith(" little") && story.startsWith(prompt + want), JSON.stringify(want));
  const parts: string[] = [];
  for await (const part of await ollama.generate({ model: "story", prompt, raw: true, stream: true, options: { num_predict: 3 } })) {
    if (!part.done) parts.push(part.response ?? "");
  }
  assert.equal(parts.join(""), want);
  assert.ok(parts[0]?.startsWith(" "), JSON.stringify(parts));
});

test("a context sent back continues the text as written: no space token between it and the new prompt", async () => {
  const first = await ollama.generate({ model: "story", prompt: "Once upon a time, there was a", stream: false, options: { num_predict: 4 } });
  assert.ok(Array.isArray(first.context));
  assert.equal(first.response, " little girl");
  const next = await ollama.generate({ model: "story", prompt: " named", context: first.context, stream: false, options: { num_predict: 6 } });
  // The same text sent whole, raw: the model must see the same tokens and answer the same.
  const whole = await ollama.generate({ model: "story", prompt: `Once upon a time, there was a${first.response} named`, raw: true, stream: false, options: { num_predict: 6 } });
  assert.equal(next.prompt_eval_count, whole.prompt_eval_count);
  assert.equal(next.response, whole.response);
  assert.ok(GOLDEN.includes(`named${next.response}`), JSON.stringify(next.response));
  // A token the vocabulary does not have is refused, and the daemon keeps serving.
  const bad = await fetch(`${daemon.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: "story", prompt: "x", context: [1, 99999], stream: false }),
  });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /context\[1\] is 99999, not a token of this model's vocabulary of 512 tokens/);
  const again = await ollama.generate({ model: "story", prompt: "Once upon a time", raw: true, stream: false, options: { num_predict: 2 } });
  assert.equal(again.eval_count, 2);
});

test("stop sequences match the written text: across tokens, with a leading space, inside a word", async () => {
  // Ollama's answers for the greedy story: everything before the stop, nothing of it or after it.
  for (const stop of [" Lily", "girl named", "amed L", ". She"]) {
    const want = GOLDEN.slice(0, GOLDEN.indexOf(stop));
    const r = await ollama.generate({ model: "story", prompt: "Once upon a time", raw: true, stream: false, options: { num_predict: 40, stop: [stop] } });
    assert.equal(r.response, want, `stop ${JSON.stringify(stop)}`);
    assert.equal(r.done_reason, "stop");
    let streamed = "";
    for await (const part of await ollama.generate({ model: "story", prompt: "Once upon a time", raw: true, stream: true, options: { num_predict: 40, stop: [stop] } })) streamed += part.response;
    assert.equal(streamed, want, `streamed, stop ${JSON.stringify(stop)}`);
  }
  // A stop that never appears holds nothing back for good: the whole answer arrives.
  const r = await ollama.generate({ model: "story", prompt: "Once upon a time", raw: true, stream: false, options: { num_predict: 12, stop: ["girl namedX"] } });
  const whole = r.response ?? "";
  assert.ok(GOLDEN.startsWith(whole) && whole.length > 30, JSON.stringify(whole));
  assert.equal(r.done_reason, "length");
});

test("streamed generate with the model's template, parameters and context", async () => {
  const stream = await ollama.generate({ model: "story", prompt: "Once upon a time", stream: true });
  let text = "";
  let final;
  for await (const chunk of stream) {
    if (chunk.done) final = chunk;
    else text += chunk.response ?? "";
  }
  assert.ok(final);
  assert.equal(final.eval_count, 12, "num_predict from the Modelfile");
  assert.ok(GOLDEN.startsWith(text), text);
  assert.ok(Array.isArray(final.context) && final.context.length === 4 + 12);
  // The request's options win over the model's parameters.
  const r = await ollama.generate({ model: "story", prompt: "Once upon a time", options: { num_predict: 3 } });
  assert.equal(r.eval_count, 3);
  // A system prompt from the request goes through the template.
  const s = await ollama.generate({ model: "story", prompt: "a time", system: "Once upon", options: { num_predict: 6 } });
  assert.ok(GOLDEN.startsWith((s.response ?? "")), (s.response ?? ""));
});

test("chat, streamed and not, renders the messages through the template", async () => {
  const r = await ollama.chat({ model: "story-chat", messages: [{ role: "user", content: "there was a little girl" }], stream: false });
  assert.equal(r.message.role, "assistant");
  assert.equal(r.done, true);
  assert.equal(r.eval_count, 8);
  assert.ok(r.message.content.length > 0);
  const stream = await ollama.chat({ model: "story-chat", messages: [{ role: "user", content: "there was a little girl" }], stream: true });
  let text = "";
  for await (const chunk of stream) if (!chunk.done) text += chunk.message.content;
  assert.equal(text, r.message.content, "greedy decoding is the same streamed or not");
});

test("format json constrains the output to JSON", async () => {
  const request = { model: "story", prompt: "Once upon a time", options: { num_predict: 40 } };
  // Without a format the same request tells a story: what follows is the grammar's doing.
  const free = (await ollama.generate(request)).response ?? "";
  assert.ok(!isJSONPrefix(free), JSON.stringify(free));
  const r = await ollama.generate({ ...request, format: "json" });
  const json = r.response ?? "";
  // Finished or cut short by num_predict, every character of the answer keeps it JSON.
  assert.ok(json.trim() !== "" && isJSONPrefix(json), JSON.stringify(json));
  if (r.done_reason === "stop") JSON.parse(json);
  const schema = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };
  const s = await ollama.generate({ ...request, format: schema, options: { num_predict: 60 } });
  const named = s.response ?? "";
  assert.ok(isJSONPrefix(named), JSON.stringify(named));
  assert.match(named, /^\{\s*"name"\s*:\s*"/);
  if (s.done_reason === "stop") assert.equal(typeof JSON.parse(named).name, "string");
});

test("embed returns normalised vectors; embeddings returns the raw one", async () => {
  const r = await ollama.embed({ model: "story", input: ["Lily went to the park", "a big red ball"] });
  assert.equal(r.embeddings.length, 2);
  for (const v of r.embeddings) {
    assert.equal(v.length, 64);
    const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-6);
  }
  assert.notDeepEqual(r.embeddings[0], r.embeddings[1]);
  const legacy = await ollama.embeddings({ model: "story", prompt: "Lily went to the park" });
  const norm = Math.sqrt(legacy.embedding.reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(legacy.embedding[0]! / norm - r.embeddings[0]![0]!) < 1e-6);
  const cut = await ollama.embed({ model: "story", input: "Lily", dimensions: 8 });
  assert.equal(cut.embeddings[0]!.length, 8);
});

test("ps lists loaded models; an empty prompt loads and keep_alive 0 unloads", async () => {
  const asked = Date.now();
  const loaded = await ollama.generate({ model: "story-chat", prompt: "" });
  assert.equal(loaded.done_reason, "load");
  const ps = await ollama.ps();
  const entry = ps.models.find((m) => m.name === "story-chat:latest");
  assert.ok(entry, JSON.stringify(ps));
  assert.equal(entry.size_vram, 0);
  assert.equal(entry.digest.length, 64);
  // Ollama's details, parent_model included (this model was made from a file, not another model).
  for (const k of ["parent_model", "format", "family", "families", "parameter_size", "quantization_level"]) assert.ok(k in entry.details, `details.${k} in ${JSON.stringify(entry.details)}`);
  assert.equal(entry.details.parent_model, "");
  // The default keep-alive of five minutes, from when the model was loaded (after it was asked for;
  // the second allows for rounding in the answer).
  assert.ok(new Date(entry.expires_at).getTime() >= asked + 5 * 60_000 - 1000, entry.expires_at.toString());
  const unloaded = await ollama.generate({ model: "story-chat", prompt: "", keep_alive: 0 });
  assert.equal(unloaded.done_reason, "unload");
  // Polled, not slept: the unload finishes after the answer, as soon as the machine gets to it; a
  // model that stays loaded is caught by the test runner's overall limit.
  const listed = async (): Promise<boolean> => (await ollama.ps()).models.some((m) => m.name === "story-chat:latest");
  while (await listed()) await new Promise((r) => setTimeout(r, 50));
  // keep_alive 0 on a real request unloads once it is answered.
  await ollama.generate({ model: "story-chat", prompt: "Lily", keep_alive: 0 });
  while (await listed()) await new Promise((r) => setTimeout(r, 50));
});

test("errors use Ollama's status codes and messages", async () => {
  await assert.rejects(ollama.generate({ model: "nothere", prompt: "x" }), /model 'nothere' not found/);
  await assert.rejects(ollama.generate({ model: "story", prompt: "x", raw: true, system: "s" }), /raw mode does not support template, system, or context/);
  await assert.rejects(ollama.generate({ model: "story", prompt: "x", images: ["aGVsbG8="] }), /does not support vision/);
  await assert.rejects(ollama.chat({ model: "story", messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", description: "", parameters: { type: "object", properties: {} } } }] }), /does not support tools/);
  const r = await fetch(`${daemon.url}/api/chat`, { method: "POST", body: JSON.stringify({ messages: [] }) });
  assert.equal(r.status, 400);
  assert.deepEqual(await r.json(), { error: "model is required" });
});

/** Rewrites stories260K with some metadata replaced. */
async function variant(name: string, replace: GGUFKV[]): Promise<string> {
  const h = await readGGUFHeader(fixtures.stories260K);
  const keys = new Set(replace.map((e) => e.key));
  const out = join(daemon.home, name);
  await writeGGUF(out, {
    kv: [...[...h.kv.values()].filter((e) => !keys.has(e.key)), ...replace],
    tensors: h.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, source: { path: fixtures.stories260K, offset: h.dataOffset + t.offset, size: t.size } })),
  });
  return out;
}

test("a GGUF that would abort llama.cpp is refused and the daemon keeps serving", async () => {
  // block_count 0 is caught by the metadata check before llama.cpp sees the file.
  await createFrom(await variant("blocks0.gguf", [{ key: "llama.block_count", type: GGUFValueType.UINT32, value: 0 }]), "bad-blocks");
  await assert.rejects(ollama.generate({ model: "bad-blocks", prompt: "x" }), /cannot be loaded: llama\.block_count is 0/);
  // head_count_kv 0 passes those checks but trips a GGML_ASSERT: the child-process probe takes the abort.
  await createFrom(await variant("kv0.gguf", [{ key: "llama.attention.head_count_kv", type: GGUFValueType.UINT32, value: 0 }]), "bad-kv");
  await assert.rejects(ollama.generate({ model: "bad-kv", prompt: "x" }), /cannot be loaded: llama\.cpp (aborted|crashed)/);
  assert.equal(daemon.process.exitCode, null, "the daemon is still running");
  const ok = await ollama.generate({ model: "story", prompt: "Once upon a time", raw: true, options: { num_predict: 4 } });
  assert.ok(GOLDEN.startsWith((ok.response ?? "")));
  const list = await runCLI(daemon, ["list"]);
  assert.equal(list.code, 0);
});
