// The official `openai` npm client's `responses.create` against a real `corral serve`: string and
// message-list input, instructions, streaming with its named events, length-limited (incomplete)
// answers, structured output, and bad bodies as OpenAI-style 400s. Every answer is checked
// against a native /api/chat of the same conversation with the same greedy options.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createModelFrom, startDaemon, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { isJSONPrefix } from "./support/json-prefix.ts";
import { newResponseContext, responseStreamEvents, responsesRequestToNative } from "../src/api/openai/responses.ts";
import { NamedEvent } from "../src/api/openai/sse.ts";

// The greedy continuation of "Once upon a time" (after BOS) for stories260K (test/fixtures/PROVENANCE.md).
const GOLDEN = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";
const TEMPLATE = "{{ range .Messages }}{{ .Content }}{{ end }}";

let daemon: Daemon;
let client: OpenAI;
const nowSeconds = (): number => Math.ceil(Date.now() / 1000);

function createModel(model: string, parameters: Record<string, unknown> = {}): Promise<void> {
  return createModelFrom(daemon, { model, path: fixtures.stories260K, name: "stories260K.gguf", extra: { template: TEMPLATE, parameters } });
}

interface NativeAnswer {
  message: { content: string };
  done_reason: string;
  prompt_eval_count: number;
  eval_count: number;
}

/** The same conversation through the native route, greedy, for the answers to agree with. */
async function nativeChat(model: string, messages: Array<{ role: string; content: string }>, extra: { num_predict: number; format?: unknown }): Promise<NativeAnswer> {
  const body = { model, messages, stream: false, options: { temperature: 0, num_predict: extra.num_predict }, ...(extra.format ? { format: extra.format } : {}) };
  const r = await fetch(`${daemon.url}/api/chat`, { method: "POST", body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as NativeAnswer;
}

/** Usage as Ollama reports it: the native counts, and zero for the details it does not track. */
function usageOf(n: NativeAnswer): Record<string, unknown> {
  return {
    input_tokens: n.prompt_eval_count,
    output_tokens: n.eval_count,
    total_tokens: n.prompt_eval_count + n.eval_count,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens_details: { reasoning_tokens: 0 },
  };
}

/** The text of a response's one message item, checking that it is one. */
function messageText(r: OpenAI.Responses.Response): string {
  assert.equal(r.output.length, 1, JSON.stringify(r.output));
  const item = r.output[0]!;
  assert.equal(item.type, "message");
  if (item.type !== "message") throw new Error("unreachable");
  assert.equal(item.role, "assistant");
  assert.match(item.id, /^msg_\d{1,6}$/);
  assert.equal(item.content.length, 1);
  const part = item.content[0]!;
  assert.equal(part.type, "output_text");
  if (part.type !== "output_text") throw new Error("unreachable");
  assert.deepEqual(part.annotations, []);
  return part.text;
}

before(async () => {
  daemon = await startDaemon();
  client = new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: "unused", maxRetries: 0 });
  await createModel("alice/story-chat:v1");
  // Stops at the first full stop, so an answer can end on its own rather than at a length limit.
  await createModel("story-sentence", { stop: ["."] });
});

after(async () => {
  await daemon?.stop();
});

test("string input, not streamed: one completed message item, the text and usage of /api/chat", async () => {
  const asked = Math.floor(Date.now() / 1000);
  const r = await client.responses.create({ model: "story-sentence", input: "Once upon a time", temperature: 0, max_output_tokens: 40 });
  const native = await nativeChat("story-sentence", [{ role: "user", content: "Once upon a time" }], { num_predict: 40 });
  assert.equal(native.done_reason, "stop");
  assert.match(r.id, /^resp_\d{1,6}$/);
  assert.equal(r.object, "response");
  assert.equal(r.status, "completed");
  assert.equal(r.incomplete_details, null);
  assert.equal(r.error, null);
  assert.equal(r.model, "story-sentence");
  assert.ok(r.created_at >= asked && r.created_at <= nowSeconds(), `created_at ${r.created_at}`);
  assert.ok(typeof r.completed_at === "number" && r.completed_at >= r.created_at, `completed_at ${r.completed_at}`);
  const text = messageText(r);
  assert.equal(text, GOLDEN.slice(0, GOLDEN.indexOf(".")), "the greedy story up to the stop");
  assert.equal(text, native.message.content);
  assert.equal(r.output_text, text, "the client joins the output text");
  assert.deepEqual(r.usage, usageOf(native));
  assert.equal(r.usage?.input_tokens, 5, "BOS + 4 prompt tokens");
  // What the request set, echoed; OpenAI's defaults for what it did not.
  assert.equal(r.temperature, 0);
  assert.equal(r.top_p, 1);
  assert.equal(r.max_output_tokens, 40);
  assert.equal(r.instructions, null);
  assert.deepEqual(r.text, { format: { type: "text" } });
  assert.deepEqual(r.tools, []);
});

test("message-list input with instructions: every item reaches the template in order", async () => {
  const r = await client.responses.create({
    model: "alice/story-chat:v1",
    instructions: "Once upon a time",
    input: [
      { type: "message", role: "developer", content: ", there" },
      // A past answer handed back as the client got it.
      { type: "message", id: "msg_1", status: "completed", role: "assistant", content: [{ type: "output_text", text: " was a", annotations: [] }] },
      { role: "user", content: [{ type: "input_text", text: " little" }, { type: "input_text", text: " girl" }] },
    ],
    temperature: 0,
    max_output_tokens: 3,
  });
  const native = await nativeChat(
    "alice/story-chat:v1",
    [
      { role: "system", content: "Once upon a time" },
      { role: "developer", content: ", there" },
      { role: "assistant", content: " was a" },
      { role: "user", content: " little girl" },
    ],
    { num_predict: 3 },
  );
  const text = messageText(r);
  assert.equal(text, native.message.content);
  // The prompt is the golden story's start, so its greedy continuation is the golden story's next words.
  assert.ok(text.length > 0 && GOLDEN.startsWith(", there was a little girl" + text), JSON.stringify(text));
  assert.deepEqual(r.usage, usageOf(native));
  assert.equal(r.instructions, "Once upon a time");
});

/** The events of a streamed response, as the client yields them. */
async function streamEvents(body: OpenAI.Responses.ResponseCreateParamsStreaming): Promise<OpenAI.Responses.ResponseStreamEvent[]> {
  const events: OpenAI.Responses.ResponseStreamEvent[] = [];
  for await (const e of await client.responses.create(body)) events.push(e);
  return events;
}

test("streamed: the events in order, numbered; deltas that add up to the unstreamed text", async () => {
  const request = { model: "story-sentence", input: "Once upon a time", temperature: 0, max_output_tokens: 40 };
  const whole = await client.responses.create(request);
  const events = await streamEvents({ ...request, stream: true });
  const types = events.map((e) => e.type);
  const deltas = types.filter((t) => t === "response.output_text.delta").length;
  assert.ok(deltas >= 2, `${deltas} deltas`);
  assert.deepEqual(types, [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    ...Array<string>(deltas).fill("response.output_text.delta"),
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
  ]);
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => i),
  );
  const [created, inProgress, added, partAdded] = events;
  assert.ok(created?.type === "response.created" && inProgress?.type === "response.in_progress");
  assert.match(created.response.id, /^resp_\d{1,6}$/);
  assert.equal(created.response.status, "in_progress");
  assert.deepEqual(created.response.output, []);
  assert.equal(created.response.usage, null);
  assert.ok(added?.type === "response.output_item.added" && added.item.type === "message");
  assert.equal(added.item.status, "in_progress");
  assert.deepEqual(added.item.content, []);
  assert.ok(partAdded?.type === "response.content_part.added");
  assert.deepEqual(partAdded.part, { type: "output_text", text: "", annotations: [], logprobs: [] });
  const itemId = added.item.id;
  let text = "";
  for (const e of events) {
    if ("item_id" in e) assert.equal(e.item_id, itemId);
    if (e.type === "response.output_text.delta") text += e.delta;
  }
  assert.equal(text, messageText(whole), "greedy decoding is the same streamed or not");
  const textDone = events.find((e) => e.type === "response.output_text.done");
  assert.ok(textDone?.type === "response.output_text.done" && textDone.text === text);
  const itemDone = events.at(-2);
  assert.ok(itemDone?.type === "response.output_item.done" && itemDone.item.type === "message");
  assert.equal(itemDone.item.status, "completed");
  const completed = events.at(-1);
  assert.ok(completed?.type === "response.completed");
  assert.equal(completed.response.id, created.response.id);
  assert.equal(completed.response.status, "completed");
  assert.equal(messageText(completed.response), text);
  assert.deepEqual(completed.response.usage, whole.usage);
});

test("the wire format: named events whose data says the same type, no [DONE]", async () => {
  const r = await fetch(`${daemon.url}/v1/responses`, {
    method: "POST",
    body: JSON.stringify({ model: "alice/story-chat:v1", input: "Once upon a time", temperature: 0, max_output_tokens: 2, stream: true }),
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/event-stream");
  const text = await r.text();
  assert.ok(!text.includes("[DONE]"));
  const frames = text.split("\n\n").filter(Boolean);
  assert.ok(frames.length >= 8, `${frames.length} events`);
  for (const frame of frames) {
    const m = /^event: (\S+)\ndata: (.+)$/.exec(frame);
    assert.ok(m, JSON.stringify(frame));
    assert.equal((JSON.parse(m[2]!) as { type: string }).type, m[1]);
  }
});

test("max_output_tokens: an answer cut at the limit is incomplete, streamed or not", async () => {
  const request = { model: "alice/story-chat:v1", input: "Once upon a time", temperature: 0, max_output_tokens: 5 };
  const r = await client.responses.create(request);
  const native = await nativeChat("alice/story-chat:v1", [{ role: "user", content: "Once upon a time" }], { num_predict: 5 });
  assert.equal(native.done_reason, "length");
  assert.equal(r.status, "incomplete");
  assert.deepEqual(r.incomplete_details, { reason: "max_output_tokens" });
  assert.equal(r.completed_at, null);
  assert.equal(messageText(r), native.message.content);
  assert.ok(GOLDEN.startsWith(native.message.content), JSON.stringify(native.message.content));
  assert.deepEqual(r.usage, usageOf(native));
  assert.equal(r.usage?.output_tokens, 5);

  const events = await streamEvents({ ...request, stream: true });
  const last = events.at(-1);
  assert.ok(last?.type === "response.incomplete", last?.type);
  assert.equal(last.response.status, "incomplete");
  assert.deepEqual(last.response.incomplete_details, { reason: "max_output_tokens" });
  assert.equal(messageText(last.response), native.message.content);
  assert.deepEqual(last.response.usage, usageOf(native));
  assert.ok(!events.some((e) => e.type === "response.completed"));
});

test("text.format json_schema constrains the output as the native format does", async () => {
  const schema = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };
  const r = await client.responses.create({
    model: "alice/story-chat:v1",
    input: "Once upon a time",
    temperature: 0,
    max_output_tokens: 30,
    text: { format: { type: "json_schema", name: "person", schema, strict: true } },
  });
  const native = await nativeChat("alice/story-chat:v1", [{ role: "user", content: "Once upon a time" }], { num_predict: 30, format: schema });
  const text = messageText(r);
  assert.equal(text, native.message.content);
  assert.ok(isJSONPrefix(text), JSON.stringify(text));
  assert.match(text, /^\{\s*"name"\s*:\s*"/);
  assert.deepEqual(r.text, { format: { type: "json_schema", name: "person", schema, strict: true } });
});

/** The 400 a request body gets, through the client: its message in OpenAI's error shape. */
async function badRequest(body: Record<string, unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(client.responses.create(body as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming), (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    const error = e.error as { message: string; type: string; param: unknown; code: unknown };
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    assert.equal(error.type, "invalid_request_error");
    assert.equal(error.param, null);
    assert.equal(error.code, null);
    return true;
  });
}

test("bad bodies get one-line 400s in OpenAI's shape", async () => {
  const model = "alice/story-chat:v1";
  await badRequest({ model, input: 5 }, "input must be a string or array: json: cannot unmarshal number into Go value of type []json.RawMessage");
  await badRequest({ model, input: "x", max_output_tokens: "ten" }, "json: cannot unmarshal string into Go struct field ResponsesRequest.max_output_tokens of type int");
  await badRequest({ model, input: "x", temperature: "hot" }, "json: cannot unmarshal string into Go struct field ResponsesRequest.temperature of type float64");
  await badRequest({ model, input: [{ type: "bogus" }] }, 'input[0]: unknown input item type: "bogus"');
  await badRequest({ model, input: ["hi"] }, String.raw`input[0]: json: cannot unmarshal string into Go value of type struct { Type string "json:\"type\""; Role string "json:\"role\"" }`);
  await badRequest({ model, input: [{ content: "hi" }] }, "input[0]: input item missing required 'type' field");
  await badRequest({ model, input: [{ role: "user", content: 7 }] }, "input[0]: content must be a string or array: json: cannot unmarshal number into Go value of type []json.RawMessage");
  await badRequest({ model, input: [{ role: "user", content: [{ type: "input_text", text: "a" }, { type: "input_audio" }] }] }, "input[0]: content[1]: unknown content type: input_audio");
  await badRequest({ model, input: [{ role: "user", content: [{ type: "input_text", text: 1 }] }] }, "input[0]: content[0]: json: cannot unmarshal number into Go struct field ResponsesTextContent.text of type string");
  await badRequest({ model, input: [{ role: "user", content: [{ type: "input_file", file_data: "x" }] }] }, "file inputs are not currently supported");
  await badRequest(
    { model, input: [{ role: "user", content: [{ type: "input_image", detail: "auto", image_url: "https://example.com/a.png" }] }] },
    "image URLs are not currently supported, please use base64 encoded data instead",
  );
  await badRequest({ model, input: "x", reasoning: { effort: "extreme" } }, /^invalid reasoning value: "extreme"/);
  // stories260K cannot think: asking it to is refused, as the native route refuses it.
  await badRequest({ model, input: "x", reasoning: { effort: "low" } }, `"${model}" does not support thinking`);
  // Function tools need a model whose template takes tools; built-in web search is not served.
  await badRequest({ model, input: "x", tools: [{ type: "function", name: "f", parameters: {}, strict: true }] }, /does not support tools$/);
  await badRequest({ model, input: "x", tools: [{ type: "web_search" }] }, "web_search tools are not supported");
  await badRequest({ model, input: [{ type: "function_call", call_id: "c1", name: "f", arguments: "{oops" }] }, /^failed to parse function call arguments: /);
  await badRequest({ model, input: [{ type: "function_call_output", call_id: "c1", output: 42 }] }, "input[0]: output must be a string or array: json: cannot unmarshal number into Go value of type []json.RawMessage");

  await assert.rejects(client.responses.create({ model: "nothere", input: "x" }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.NotFoundError, String(e));
    assert.equal((e.error as { type: string }).type, "not_found_error");
    return true;
  });
  const raw = await fetch(`${daemon.url}/v1/responses`, { method: "POST", body: "{not json" });
  assert.equal(raw.status, 400);
  assert.equal(((await raw.json()) as { error: { type: string } }).error.type, "invalid_request_error");
});

// ---- the translation on its own, for what stories260K cannot show ----

test("translation: past reasoning goes on the next assistant turn, images are decoded, past searches skipped", () => {
  const png = Buffer.from("not really a png").toString("base64");
  const native = responsesRequestToNative({
    model: "m",
    input: [
      { role: "user", content: [{ type: "input_text", text: "look: " }, { type: "input_image", detail: "auto", image_url: `data:image/png;base64,${png}` }] },
      { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "they asked me to look" },
      { type: "web_search_call", id: "ws_1", status: "completed", action: { type: "search", query: "q" } },
      { type: "message", role: "assistant", content: [{ type: "output_text", text: "I see it" }] },
      { type: "message", role: "user", content: null },
      { type: "reasoning", encrypted_content: "left over" },
    ],
    top_p: 0.5,
    max_output_tokens: 7,
    stream: true,
    reasoning: { effort: "minimal" },
    text: { format: { type: "json_object" } },
  });
  assert.deepEqual(native, {
    model: "m",
    messages: [
      { role: "user", content: "look: ", images: [png] },
      { role: "assistant", content: "I see it", thinking: "they asked me to look" },
      { role: "user", content: "" },
      { role: "assistant", content: "", thinking: "left over" },
    ],
    // OpenAI's temperature default; top_p only when given; no format for json_object, as in Ollama.
    options: { temperature: 1, top_p: 0.5, num_predict: 7 },
    stream: true,
    think: "low",
  });
  assert.deepEqual(responsesRequestToNative({ model: "m", input: "", instructions: "be brief" }).messages, [{ role: "system", content: "be brief" }]);
});

async function* lines(...items: Record<string, unknown>[]): AsyncGenerator<Record<string, unknown>> {
  yield* items;
}

async function collect(events: AsyncIterable<unknown>): Promise<Array<Record<string, unknown> & { type: string }>> {
  const out: Array<Record<string, unknown> & { type: string }> = [];
  for await (const e of events) {
    assert.ok(e instanceof NamedEvent);
    assert.equal((e.data as { type: string }).type, e.event);
    out.push(e.data as Record<string, unknown> & { type: string });
  }
  return out;
}

test("stream translation: an answer without text has no message item; a failure mid-stream is a last error event", async () => {
  const ctx = newResponseContext({ model: "m" });
  const at = "2025-05-04T17:37:44.706015396Z";
  const empty = await collect(responseStreamEvents(ctx, lines({ model: "m", created_at: at, message: { role: "assistant", content: "" }, done: true, done_reason: "stop" })));
  assert.deepEqual(
    empty.map((e) => e.type),
    ["response.created", "response.in_progress", "response.completed"],
  );
  const completed = empty[2]!["response"] as { output: unknown[]; created_at: number; status: string };
  assert.deepEqual(completed.output, []);
  assert.equal(completed.created_at, 1746380264);
  assert.equal(completed.status, "completed");

  const failed = await collect(responseStreamEvents(ctx, lines({ model: "m", created_at: at, message: { role: "assistant", content: "Hi" }, done: false }, { error: "the runner crashed" })));
  assert.deepEqual(
    failed.map((e) => [e.type, e["sequence_number"]]),
    [
      ["response.created", 0],
      ["response.in_progress", 1],
      ["response.output_item.added", 2],
      ["response.content_part.added", 3],
      ["response.output_text.delta", 4],
      ["error", 5],
    ],
  );
  assert.deepEqual(failed[5], { type: "error", sequence_number: 5, code: null, message: "the runner crashed", param: null });
  const cut = await collect(responseStreamEvents(ctx, lines({ model: "m", created_at: at, message: { role: "assistant", content: "Hi" }, done: false })));
  assert.equal(cut.at(-1)!["message"], "the model's response ended before it was done");
});
