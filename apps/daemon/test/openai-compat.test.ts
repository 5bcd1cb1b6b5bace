// The official `openai` npm client against a real `corral serve`: chat completions and completions
// (streamed and not), embeddings, the model list, and errors in OpenAI's shape, all served by
// translating to the native routes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { debugEvents, createModelFrom, startDaemon, waitForDebugEvent, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";

// The greedy continuation of "Once upon a time" (after BOS) for stories260K (test/fixtures/PROVENANCE.md).
const GOLDEN = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";

let daemon: Daemon;
let client: OpenAI;
/** Unix seconds before any model was created: a lower bound for every `created`. */
let suiteStart = 0;
const nowSeconds = (): number => Math.ceil(Date.now() / 1000);

function createModel(model: string, template: string): Promise<void> {
  return createModelFrom(daemon, { model, path: fixtures.stories260K, name: "stories260K.gguf", extra: { template } });
}

before(async () => {
  suiteStart = Math.floor(Date.now() / 1000);
  // The debug log says when each generation ended and why.
  daemon = await startDaemon({ env: { CORRAL_DEBUG: "1" } });
  client = new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: "unused", maxRetries: 0 });
  await createModel("story", "{{ .Prompt }}");
  await createModel("alice/story-chat:v1", "{{ range .Messages }}{{ .Content }}{{ end }}");
});

after(async () => {
  await daemon?.stop();
});

const chatRequest = {
  model: "alice/story-chat:v1",
  messages: [{ role: "user" as const, content: "Once upon a time" }],
  temperature: 0,
  max_tokens: 12,
};

test("chat completion (not streamed) continues the story greedily", async () => {
  const asked = Math.floor(Date.now() / 1000);
  const r = await client.chat.completions.create(chatRequest);
  assert.match(r.id, /^chatcmpl-\d{1,3}$/);
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, "alice/story-chat:v1");
  assert.equal(r.system_fingerprint, "fp_ollama");
  assert.ok(r.created >= asked && r.created <= nowSeconds(), `created ${r.created}: Unix seconds while it was answered`);
  assert.equal(r.choices.length, 1);
  const choice = r.choices[0]!;
  assert.equal(choice.message.role, "assistant");
  const text = choice.message.content ?? "";
  assert.ok(text.startsWith(", there was a little girl"), JSON.stringify(text));
  assert.ok(GOLDEN.startsWith(text), JSON.stringify(text));
  assert.equal(choice.finish_reason, "length");
  assert.equal(r.usage?.completion_tokens, 12);
  assert.equal(r.usage?.prompt_tokens, 5, "BOS + 4 prompt tokens");
  assert.equal(r.usage?.total_tokens, 17);
});

test("chat completion (streamed) gives the same text, role first, usage last", async () => {
  const whole = await client.chat.completions.create(chatRequest);
  const stream = await client.chat.completions.create({ ...chatRequest, stream: true, stream_options: { include_usage: true } });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  assert.ok(chunks.length >= 4, `${chunks.length} chunks`);
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1);
  assert.match([...ids][0]!, /^chatcmpl-\d{1,3}$/);
  assert.equal(new Set(chunks.map((c) => c.created)).size, 1, "one created for the whole stream");
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
  assert.equal(chunks[0]!.choices[0]!.delta.role, "assistant");
  assert.ok(chunks.slice(1).every((c) => c.choices[0]?.delta.role === undefined), "role only in the first chunk");
  const usage = chunks.at(-1)!;
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, { prompt_tokens: 5, completion_tokens: 12, total_tokens: 17 });
  const finish = chunks.at(-2)!;
  assert.deepEqual(finish.choices[0]!.delta, {});
  assert.equal(finish.choices[0]!.finish_reason, "length");
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
  assert.equal(text, whole.choices[0]!.message.content);
});

test("the SSE wire format: event-stream, data lines, [DONE] at the end", async () => {
  const r = await fetch(`${daemon.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...chatRequest, max_tokens: 3, stream: true }),
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/event-stream");
  const text = await r.text();
  assert.ok(text.endsWith("data: [DONE]\n\n"), JSON.stringify(text.slice(-40)));
  const events = text.split("\n\n").filter(Boolean);
  assert.ok(events.every((e) => e.startsWith("data: ")));
  // Without include_usage there is no usage chunk: the one before [DONE] is the finish chunk.
  const last = JSON.parse(events.at(-2)!.slice(6)) as { choices: Array<{ finish_reason: string }>; usage?: unknown };
  assert.equal(last.choices[0]!.finish_reason, "length");
  assert.equal(last.usage, undefined);
});

test("completions (not streamed and streamed) continue the prompt", async () => {
  const r = await client.completions.create({ model: "story", prompt: "Once upon a time", temperature: 0, max_tokens: 10 });
  assert.match(r.id, /^cmpl-\d{1,3}$/);
  assert.equal(r.object, "text_completion");
  assert.equal(r.model, "story");
  const text = r.choices[0]!.text;
  assert.ok(text.startsWith(", there was a little girl named Lily"), JSON.stringify(text));
  assert.equal(r.choices[0]!.finish_reason, "length");
  assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 10, total_tokens: 15 });

  const stream = await client.completions.create({ model: "story", prompt: "Once upon a time", temperature: 0, max_tokens: 10, stream: true, stream_options: { include_usage: true } });
  const chunks: OpenAI.Completion[] = [];
  for await (const c of stream) chunks.push(c);
  assert.ok(chunks.every((c) => c.object === "text_completion" && c.id === chunks[0]!.id));
  assert.equal(chunks.map((c) => c.choices[0]?.text ?? "").join(""), text);
  assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, "length");
  assert.deepEqual(chunks.at(-1)!.usage, { prompt_tokens: 5, completion_tokens: 10, total_tokens: 15 });
});

test("a completion keeps the first token's leading space, so prompt + text reads as written", async () => {
  const prompt = "Once upon a time, there was a";
  const r = await client.completions.create({ model: "story", prompt, temperature: 0, max_tokens: 4 });
  assert.equal(r.choices[0]!.text, " little girl");
  const stream = await client.completions.create({ model: "story", prompt, temperature: 0, max_tokens: 4, stream: true });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.text ?? "";
  assert.equal(`${prompt}${text}`, "Once upon a time, there was a little girl");
});

test("embeddings: float and base64 agree; dimensions; usage", async () => {
  const input = ["Lily went to the park", "a big red ball"];
  const f = await client.embeddings.create({ model: "story", input, encoding_format: "float" });
  assert.equal(f.object, "list");
  assert.equal(f.model, "story");
  assert.equal(f.data.length, 2);
  assert.deepEqual(f.data.map((d) => [d.object, d.index]), [["embedding", 0], ["embedding", 1]]);
  assert.ok(f.usage.prompt_tokens > 0 && f.usage.total_tokens === f.usage.prompt_tokens);
  const v = f.data[0]!.embedding;
  assert.ok(v.length > 0);
  assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-4, "native vectors are L2-normalised");

  // The client decodes base64 itself; check the raw bytes too.
  const raw = (await (
    await fetch(`${daemon.url}/v1/embeddings`, { method: "POST", body: JSON.stringify({ model: "story", input, encoding_format: "base64" }) })
  ).json()) as { data: Array<{ embedding: string }> };
  const bytes = Buffer.from(raw.data[0]!.embedding, "base64");
  assert.equal(bytes.length, v.length * 4);
  const decoded = Array.from({ length: v.length }, (_, i) => bytes.readFloatLE(i * 4));
  assert.deepEqual(decoded, v.map(Math.fround));
  // With no encoding_format the client asks for base64 itself and decodes the float32 bytes.
  const b = await client.embeddings.create({ model: "story", input });
  assert.deepEqual(b.data[1]!.embedding, f.data[1]!.embedding.map(Math.fround));

  const single = await client.embeddings.create({ model: "story", input: "Lily", dimensions: 8 });
  assert.equal(single.data.length, 1);
  assert.equal(single.data[0]!.embedding.length, 8);
});

test("models: list and retrieve", async () => {
  const list = await client.models.list();
  const byId = new Map(list.data.map((m) => [m.id, m]));
  assert.deepEqual([...byId.keys()].sort(), ["alice/story-chat:v1", "story:latest"]);
  const story = byId.get("story:latest")!;
  assert.equal(story.object, "model");
  assert.equal(story.owned_by, "library");
  assert.ok(story.created >= suiteStart && story.created <= nowSeconds(), `created ${story.created}: Unix seconds since the model was made`);
  assert.equal(byId.get("alice/story-chat:v1")!.owned_by, "alice");

  const one = await client.models.retrieve("story");
  assert.deepEqual(one, { id: "story", object: "model", created: story.created, owned_by: "library" });
  const namespaced = await client.models.retrieve("alice/story-chat:v1");
  assert.equal(namespaced.owned_by, "alice");
  await assert.rejects(client.models.retrieve("nothere"), (e: unknown) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.status, 404);
    assert.equal(e.message, "404 model 'nothere:latest' not found");
    assert.deepEqual(e.error, { message: "model 'nothere:latest' not found", type: "not_found_error", param: null, code: null });
    return true;
  });
});

test("errors come back in OpenAI's shape", async () => {
  await assert.rejects(client.chat.completions.create({ model: "story", messages: [] }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.deepEqual(e.error, { message: "[] is too short - 'messages'", type: "invalid_request_error", param: null, code: null });
    return true;
  });
  await assert.rejects(
    client.chat.completions.create({ model: "story", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] }] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.message === "400 image URLs are not currently supported, please use base64 encoded data instead",
  );
  await assert.rejects(client.chat.completions.create({ ...chatRequest, model: "nothere" }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.NotFoundError, String(e));
    assert.equal((e.error as { type: string }).type, "not_found_error");
    return true;
  });
  await assert.rejects(client.completions.create({ model: "nothere", prompt: "x", stream: true }), (e: unknown) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(client.embeddings.create({ model: "story", input: [] }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.message === "400 invalid input");
  // stories260K has no tools capability: the native 400 passes through.
  await assert.rejects(
    client.chat.completions.create({ ...chatRequest, tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && /does not support tools/.test(e.message),
  );
  const bad = await fetch(`${daemon.url}/v1/chat/completions`, { method: "POST", body: "{not json" });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { error: { type: string } }).error.type, "invalid_request_error");
});

test("a client that leaves mid-stream stops the work and the daemon keeps serving", async () => {
  const seen = debugEvents(daemon).length;
  const controller = new AbortController();
  const stream = await client.chat.completions.create({ ...chatRequest, max_tokens: 2000, stream: true }, { signal: controller.signal });
  let text = "";
  // The client ends the iteration quietly when its own signal aborts it.
  for await (const c of stream) {
    text += c.choices[0]?.delta.content ?? "";
    if (text.length > 20) controller.abort();
  }
  assert.ok(text.length > 20 && text.length < 200, JSON.stringify(text));
  // The daemon's own account: the generation stopped because its client left, not at max_tokens,
  // and made at most the token already under way once it knew.
  const ended = await waitForDebugEvent(daemon, seen, (e) => e.msg === "generation ended");
  assert.equal(ended["stop_reason"], "abort", JSON.stringify(ended));
  assert.ok((ended["eval_count"] as number) < 2000, JSON.stringify(ended));
  assert.ok((ended["tokens_after_client_left"] as number) <= 1, JSON.stringify(ended));
  const r = await client.chat.completions.create({ ...chatRequest, max_tokens: 3 });
  assert.equal(r.usage?.completion_tokens, 3);
});
