// The OpenAI layer's translation on its own: request bodies mapped onto native requests, and native
// answers (one object, or an NDJSON Response built here) mapped back to OpenAI objects and SSE.
import { test } from "node:test";
import assert from "node:assert/strict";
import { StatusError } from "../src/errors.ts";
import { chatCompletionFields, completionFields, embedFields, parseBody } from "../src/api/openai/body.ts";
import { chatCompletion, chatRequestToNative, chatStreamEvents, imageFromURL, thinkFromEffort } from "../src/api/openai/chat.ts";
import { completion, completionRequestToNative, completionStreamEvents } from "../src/api/openai/completions.ts";
import { embedRequestToNative, embeddingList, encodingFormat, floatsToBase64 } from "../src/api/openai/embeddings.ts";
import { errorBody, fromNativeError } from "../src/api/openai/errors.ts";
import { findModel, modelList } from "../src/api/openai/models.ts";
import { unixSeconds } from "../src/api/openai/native.ts";
import { readNDJSON, sseResponse, type SSEEvent } from "../src/api/openai/sse.ts";

/** An OpenAI chunk as it came off the wire, read field by field as the assertions need. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type WireChunk = Record<string, any>;

function rejects400(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof StatusError && e.status === 400 && e.message === message);
}

/** A native NDJSON answer, delivered in awkward pieces so line splitting is exercised. */
function ndjson(lines: object[], tail = ""): Response {
  const text = lines.map((l) => JSON.stringify(l) + "\n").join("") + tail;
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
      controller.close();
    },
  });
  return new Response(body, { headers: { "Content-Type": "application/x-ndjson" } });
}

/** Reads an SSE answer into its `data:` payloads, checking the framing. */
async function sseData(res: Response): Promise<string[]> {
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const text = await res.text();
  assert.ok(text.endsWith("\n\n"), JSON.stringify(text));
  return text
    .slice(0, -2)
    .split("\n\n")
    .map((ev) => {
      assert.ok(ev.startsWith("data: "), ev);
      return ev.slice(6);
    });
}

const T0 = "2025-05-04T17:37:44.706015396Z";
const T1 = "2025-05-04T17:37:46.1Z";
const chunk = (message: Record<string, unknown>, extra: Record<string, unknown> = {}, created_at = T0): Record<string, unknown> => ({
  model: "story",
  created_at,
  message: { role: "assistant", content: "", ...message },
  done: false,
  ...extra,
});

test("unixSeconds reads nanosecond RFC 3339 times and offsets", () => {
  assert.equal(unixSeconds(T0), 1746380264);
  assert.equal(unixSeconds("2025-05-04T10:37:44.706015396-07:00"), 1746380264);
  assert.equal(unixSeconds(undefined, () => 5_000), 5);
  assert.equal(unixSeconds("yesterday", () => 7_999), 7);
});

test("chat request: messages, sampling defaults and options", () => {
  const req = parseBody(
    JSON.stringify({
      model: "story",
      messages: [
        { role: "system", content: "Be kind." },
        { role: "user", content: [{ type: "text", text: "Look:" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0K" } }, { type: "image_url", image_url: "data:;base64,AAAA" }] },
      ],
      max_tokens: 20,
      seed: 42,
      stop: "\n",
      frequency_penalty: 0.5,
      stream: true,
    }),
    "ChatCompletionRequest",
    chatCompletionFields,
  );
  const n = chatRequestToNative(req);
  assert.deepEqual(n, {
    model: "story",
    messages: [
      { role: "system", content: "Be kind." },
      { role: "user", content: "Look:" },
      { role: "user", content: "", images: ["iVBORw0K"] },
      { role: "user", content: "", images: ["AAAA"] },
    ],
    options: { stop: ["\n"], num_predict: 20, temperature: 1.0, seed: 42, frequency_penalty: 0.5, top_p: 1.0 },
    stream: true,
  });
  const explicit = chatRequestToNative({ model: "m", messages: [{ role: "user", content: "hi" }], temperature: 0, top_p: 0.5, stop: ["a", 3, "b"], presence_penalty: 0 });
  assert.deepEqual(explicit.options, { stop: ["a", "b"], temperature: 0, presence_penalty: 0, top_p: 0.5 });
  assert.equal(explicit.stream, false);
});

test("chat request: errors in Ollama's words", () => {
  rejects400(() => chatRequestToNative({ model: "m", messages: [] }), "[] is too short - 'messages'");
  rejects400(() => chatRequestToNative({ model: "m" }), "[] is too short - 'messages'");
  rejects400(
    () => chatRequestToNative({ model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }] }),
    "image URLs are not currently supported, please use base64 encoded data instead",
  );
  rejects400(() => imageFromURL("data:image/gif;base64,AAAA"), "invalid image input");
  rejects400(() => imageFromURL("data:image/png;base64,not base64!"), "invalid image input");
  rejects400(() => chatRequestToNative({ model: "m", messages: [{ role: "user", content: [{ type: "video" }] }] }), "invalid message format");
  rejects400(() => chatRequestToNative({ model: "m", messages: [{ role: "user", content: [{ type: "text", text: 3 }] }] }), "invalid message format");
  rejects400(() => chatRequestToNative({ model: "m", messages: [{ role: "user" }] }), "invalid message content type: <nil>");
  rejects400(() => chatRequestToNative({ model: "m", messages: [{ role: "user", content: 5 }] }), "invalid message content type: float64");
  rejects400(
    () => chatRequestToNative({ model: "m", messages: [{ role: "assistant", content: "", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{oops" } }] }] }),
    "invalid tool call arguments",
  );
  rejects400(() => chatRequestToNative({ model: "m", messages: [{ role: "user", content: "x" }], reasoning_effort: "lots" }), 'invalid reasoning value: "lots" (must be "minimal", "low", "medium", "high", "xhigh", "ultra", "max", or "none")');
  rejects400(() => parseBody('{"model":"m","max_tokens":"9"}', "ChatCompletionRequest", chatCompletionFields), "json: cannot unmarshal string into Go struct field ChatCompletionRequest.max_tokens of type int");
  rejects400(() => parseBody('{"max_tokens":1.5}', "ChatCompletionRequest", chatCompletionFields), "json: cannot unmarshal number 1.5 into Go struct field ChatCompletionRequest.max_tokens of type int");
  rejects400(() => parseBody('{"messages":[{"role":7}]}', "ChatCompletionRequest", chatCompletionFields), "json: cannot unmarshal number into Go struct field ChatCompletionRequest.messages.role of type string");
  rejects400(() => parseBody('{"stream_options":{"include_usage":"yes"}}', "ChatCompletionRequest", chatCompletionFields), "json: cannot unmarshal string into Go struct field ChatCompletionRequest.stream_options.include_usage of type bool");
  rejects400(() => parseBody("[1]", "ChatCompletionRequest", chatCompletionFields), "json: cannot unmarshal array into Go value of type openai.ChatCompletionRequest");
  rejects400(() => parseBody("", "ChatCompletionRequest", chatCompletionFields), "EOF");
  assert.deepEqual(parseBody('{"model":null,"seed":null,"stop":7}', "ChatCompletionRequest", chatCompletionFields), { model: null, seed: null, stop: 7 });
});

test("chat request: tools, tool calls and tool results map to native messages", () => {
  const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
  const n = chatRequestToNative({
    model: "m",
    tools,
    messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: null, reasoning: "need the tool", tool_calls: [{ id: "call_abc", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"c"}' } }] },
      { role: "tool", tool_call_id: "call_abc", content: "18 degrees" },
      { role: "tool", name: "explicit_name", tool_call_id: "call_abc", content: [{ type: "text", text: "and sunny" }] },
    ],
  });
  assert.deepEqual(n.tools, tools);
  assert.deepEqual(n.messages, [
    { role: "user", content: "Weather in Paris?" },
    { role: "assistant", content: "", thinking: "need the tool", tool_calls: [{ id: "call_abc", function: { index: 0, name: "get_weather", arguments: { city: "Paris", unit: "c" } } }] },
    { role: "tool", content: "18 degrees", tool_name: "get_weather", tool_call_id: "call_abc" },
    { role: "tool", content: "and sunny", tool_name: "explicit_name", tool_call_id: "call_abc" },
  ]);
  // Key order of the arguments survives the round trip.
  assert.deepEqual(Object.keys(n.messages[1]!.tool_calls![0]!.function.arguments as object), ["city", "unit"]);
});

test("chat request: response_format, reasoning effort, logprobs", () => {
  const base = { model: "m", messages: [{ role: "user", content: "x" }] };
  assert.equal(chatRequestToNative({ ...base, response_format: { type: "json_object" } }).format, "json");
  const schema = { type: "object", properties: { a: { type: "number" } } };
  assert.deepEqual(chatRequestToNative({ ...base, response_format: { type: "json_schema", json_schema: { name: "x", schema } } }).format, schema);
  assert.equal(chatRequestToNative({ ...base, response_format: { type: "text" } }).format, undefined);
  assert.equal(chatRequestToNative({ ...base, reasoning_effort: "none" }).think, false);
  assert.equal(chatRequestToNative({ ...base, reasoning: { effort: "high" }, reasoning_effort: "low" }).think, "high");
  assert.equal(chatRequestToNative(base).think, undefined);
  assert.deepEqual(["minimal", "low", "medium", "high", "max", "xhigh", "ultra"].map(thinkFromEffort), ["low", "low", "medium", "high", "max", "max", "max"]);
  const lp = chatRequestToNative({ ...base, logprobs: true, top_logprobs: 3 });
  assert.equal(lp.logprobs, true);
  assert.equal(lp.top_logprobs, 3);
});

test("chat response (not streamed): content, reasoning, tool calls, usage", () => {
  const r = chatCompletion("chatcmpl-7", {
    model: "story",
    created_at: T0,
    message: { role: "assistant", content: "", thinking: "hmm", tool_calls: [{ id: "call_x1", function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } }] },
    done: true,
    done_reason: "stop",
    prompt_eval_count: 10,
    eval_count: 4,
  });
  assert.deepEqual(r, {
    id: "chatcmpl-7",
    object: "chat.completion",
    created: 1746380264,
    model: "story",
    system_fingerprint: "fp_ollama",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "", reasoning: "hmm", tool_calls: [{ id: "call_x1", index: 0, type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
        finish_reason: "tool_calls",
      },
    ],
    usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
  });
  const plain = chatCompletion("chatcmpl-1", { model: "story", created_at: T0, message: { role: "assistant", content: "Hi" }, done: true, done_reason: "length" });
  assert.deepEqual(plain.choices[0], { index: 0, message: { role: "assistant", content: "Hi" }, finish_reason: "length" });
});

test("chat stream: role first, same created, split reasoning, finish chunk, usage, [DONE]", async () => {
  const native = ndjson([
    chunk({ thinking: "Let me think." }),
    chunk({ thinking: " Done.", content: "Once" }, {}, T1),
    chunk({ content: " upon" }, {}, T1),
    { ...chunk({}, {}, T1), done: true, done_reason: "stop", prompt_eval_count: 5, eval_count: 3 },
  ]);
  const data = await sseData(sseResponse(chatStreamEvents("chatcmpl-42", readNDJSON(native.body), true)));
  assert.equal(data.at(-1), "[DONE]");
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as WireChunk);
  for (const c of chunks) {
    assert.equal(c["id"], "chatcmpl-42");
    assert.equal(c["object"], "chat.completion.chunk");
    assert.equal(c["created"], 1746380264, "every chunk has the first chunk's created");
    assert.equal(c["model"], "story");
    assert.equal(c["system_fingerprint"], "fp_ollama");
  }
  assert.deepEqual(
    chunks.map((c) => c["choices"]),
    [
      [{ index: 0, delta: { role: "assistant", content: "", reasoning: "Let me think." }, finish_reason: null }],
      [{ index: 0, delta: { reasoning: " Done." }, finish_reason: null }],
      [{ index: 0, delta: { content: "Once" }, finish_reason: null }],
      [{ index: 0, delta: { content: " upon" }, finish_reason: null }],
      [{ index: 0, delta: {}, finish_reason: "stop" }],
      [],
    ],
  );
  assert.deepEqual(chunks.at(-1)!["usage"], { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  assert.equal(chunks.slice(0, -1).some((c) => "usage" in c), false);
});

test("chat stream: tool calls turn stop into tool_calls; a lone final chunk still opens with the role", async () => {
  const tc = { id: "call_q", function: { index: 0, name: "f", arguments: { a: 1 } } };
  const data = await sseData(
    sseResponse(chatStreamEvents("chatcmpl-1", readNDJSON(ndjson([chunk({ tool_calls: [tc] }), { ...chunk({}), done: true, done_reason: "stop" }]).body), false)),
  );
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as WireChunk);
  assert.deepEqual(chunks[0]!["choices"][0]["delta"], { role: "assistant", content: "", tool_calls: [{ id: "call_q", index: 0, type: "function", function: { name: "f", arguments: '{"a":1}' } }] });
  assert.equal(chunks[1]!["choices"][0]["finish_reason"], "tool_calls");
  assert.equal(chunks.length, 2);

  const lone = await sseData(sseResponse(chatStreamEvents("chatcmpl-2", readNDJSON(ndjson([{ ...chunk({}), done: true, done_reason: "length" }]).body), false)));
  assert.deepEqual(
    lone.slice(0, -1).map((d) => (JSON.parse(d) as WireChunk)["choices"][0]),
    [
      { index: 0, delta: { role: "assistant", content: "" }, finish_reason: null },
      { index: 0, delta: {}, finish_reason: "length" },
    ],
  );
});

test("chat stream: a native error line ends the stream with an OpenAI error event", async () => {
  const data = await sseData(sseResponse(chatStreamEvents("chatcmpl-3", readNDJSON(ndjson([chunk({ content: "Once" }), { error: "the runner crashed" }]).body), false)));
  assert.equal(data.length, 2);
  assert.deepEqual(JSON.parse(data[1]!), errorBody(500, "the runner crashed"));
  assert.deepEqual(JSON.parse(data[1]!), { error: { message: "the runner crashed", type: "api_error", param: null, code: null } });
  const cut = await sseData(sseResponse(chatStreamEvents("chatcmpl-4", readNDJSON(ndjson([chunk({ content: "Once" })], '{"model":').body), false)));
  assert.match(JSON.parse(cut.at(-1)!).error.message, /invalid line in the native response/);
  const short = await sseData(sseResponse(chatStreamEvents("chatcmpl-5", readNDJSON(ndjson([chunk({ content: "Once" })]).body), false)));
  assert.equal(JSON.parse(short.at(-1)!).error.message, "the model's response ended before it was done");
});

test("completion request and response", () => {
  const req = parseBody('{"model":"story","prompt":"Once upon a time","suffix":"The end.","max_tokens":8,"top_p":0,"stop":["\\n"],"logprobs":2,"stream":true}', "CompletionRequest", completionFields);
  assert.deepEqual(completionRequestToNative(req), {
    model: "story",
    prompt: "Once upon a time",
    suffix: "The end.",
    options: { stop: ["\n"], num_predict: 8, temperature: 1.0, frequency_penalty: 0, presence_penalty: 0, top_p: 1.0 },
    stream: true,
    logprobs: true,
    top_logprobs: 2,
  });
  rejects400(() => completionRequestToNative({ model: "m", prompt: "x", stop: ["a", 1] }), "invalid type for 'stop' field: float64");
  rejects400(() => parseBody('{"prompt":["a","b"]}', "CompletionRequest", completionFields), "json: cannot unmarshal array into Go struct field CompletionRequest.prompt of type string");
  assert.deepEqual(completion("cmpl-5", { model: "story", created_at: T0, response: ", there was", done: true, done_reason: "length", prompt_eval_count: 5, eval_count: 3 }), {
    id: "cmpl-5",
    object: "text_completion",
    created: 1746380264,
    model: "story",
    system_fingerprint: "fp_ollama",
    choices: [{ text: ", there was", index: 0, finish_reason: "length" }],
    usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
  });
});

test("completion stream: one chunk per native chunk, usage chunk, [DONE]", async () => {
  const g = (response: string, extra: Record<string, unknown> = {}, created_at = T0): Record<string, unknown> => ({ model: "story", created_at, response, done: false, ...extra });
  const native = ndjson([g(","), g(" there", {}, T1), g("", { done: true, done_reason: "stop", prompt_eval_count: 5, eval_count: 2 }, T1)]);
  const data = await sseData(sseResponse(completionStreamEvents("cmpl-9", readNDJSON(native.body), true)));
  assert.equal(data.at(-1), "[DONE]");
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as WireChunk);
  assert.deepEqual(
    chunks.map((c) => c["choices"]),
    [[{ text: ",", index: 0, finish_reason: null }], [{ text: " there", index: 0, finish_reason: null }], [{ text: "", index: 0, finish_reason: "stop" }], []],
  );
  assert.ok(chunks.every((c) => c["object"] === "text_completion" && c["id"] === "cmpl-9" && c["created"] === 1746380264));
  assert.deepEqual(chunks[0]!["usage"], { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  assert.deepEqual(chunks.at(-1)!["usage"], { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
});

test("embeddings: input checks, encoding format, base64 float32", () => {
  rejects400(() => embedRequestToNative({ model: "m", input: [] }), "invalid input");
  rejects400(() => embedRequestToNative({ model: "m", input: null }), "invalid input");
  rejects400(() => embedRequestToNative({ model: "m" }), "invalid input");
  rejects400(() => embedRequestToNative({ model: "m", input: "x", encoding_format: "int8" }), "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].");
  rejects400(() => parseBody('{"dimensions":"8"}', "EmbedRequest", embedFields), "json: cannot unmarshal string into Go struct field EmbedRequest.dimensions of type int");
  assert.deepEqual(embedRequestToNative({ model: "m", input: "" }), { model: "m", input: [""] });
  assert.deepEqual(embedRequestToNative({ model: "m", input: ["a", "b"], dimensions: 4 }), { model: "m", input: ["a", "b"], dimensions: 4 });
  assert.equal(encodingFormat("BASE64"), "base64");
  assert.equal(encodingFormat(undefined), "float");

  // 1.0f = 00 00 80 3f, -2.5f = 00 00 20 c0 (little-endian).
  assert.equal(floatsToBase64([1, -2.5]), Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]).toString("base64"));
  const vec = [0.1, -0.30000001192092896, 0.5];
  const list = embeddingList("m", { model: "m", embeddings: [vec], prompt_eval_count: 3 }, "base64");
  const back = new Float32Array(new Uint8Array(Buffer.from(list.data[0]!.embedding as string, "base64")).buffer);
  assert.deepEqual([...back], vec.map(Math.fround));
  assert.deepEqual(embeddingList("m", { embeddings: [vec], prompt_eval_count: 3 }, "float"), {
    object: "list",
    data: [{ object: "embedding", embedding: vec, index: 0 }],
    model: "m",
    usage: { prompt_tokens: 3, total_tokens: 3 },
  });
});

test("models: list and lookup by name with the default tag", () => {
  const tags = {
    models: [
      { name: "alice/story:short", model: "alice/story:short", modified_at: "2025-05-04T10:37:44.5-07:00" },
      { name: "story:latest", model: "story:latest", modified_at: T0 },
    ],
  };
  assert.deepEqual(modelList(tags), {
    object: "list",
    data: [
      { id: "alice/story:short", object: "model", created: 1746380264, owned_by: "alice" },
      { id: "story:latest", object: "model", created: 1746380264, owned_by: "library" },
    ],
  });
  assert.deepEqual(modelList({ models: [] }), { object: "list", data: [] });
  assert.deepEqual(findModel(tags, "story"), { id: "story", object: "model", created: 1746380264, owned_by: "library" });
  assert.equal(findModel(tags, "Alice/Story:short").owned_by, "Alice");
  assert.throws(() => findModel(tags, "nothere"), (e: unknown) => e instanceof StatusError && e.status === 404 && e.message === "model 'nothere:latest' not found");
  assert.throws(() => findModel(tags, "alice/story"), (e: unknown) => e instanceof StatusError && e.status === 404);
});

test("native errors become OpenAI errors with the same status", async () => {
  const cases: Array<[Response, number, string, string]> = [
    [Response.json({ error: "model is required" }, { status: 400 }), 400, "invalid_request_error", "model is required"],
    [Response.json({ error: "model 'x' not found" }, { status: 404 }), 404, "not_found_error", "model 'x' not found"],
    [new Response("404 page not found", { status: 404 }), 404, "not_found_error", "404 page not found"],
    [Response.json({ error: "server busy" }, { status: 503 }), 503, "api_error", "server busy"],
  ];
  for (const [native, status, type, message] of cases) {
    const r = await fromNativeError(native);
    assert.equal(r.status, status);
    assert.deepEqual(await r.json(), { error: { message, type, param: null, code: null } });
  }
});

test("an SSE consumer that stops early cancels the native body", async () => {
  let cancelled = false;
  const native = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(new TextEncoder().encode(JSON.stringify(chunk({ content: "x" })) + "\n"));
    },
    cancel() {
      cancelled = true;
    },
  });
  const res = sseResponse(chatStreamEvents("chatcmpl-6", readNDJSON(native), false) as AsyncIterable<SSEEvent>);
  const reader = res.body!.getReader();
  await reader.read();
  await reader.read();
  await reader.cancel();
  assert.equal(cancelled, true);
});
