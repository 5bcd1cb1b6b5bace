// Tool calling end to end (docs/daemon.md, "Thinking and tool calls"): the small stories model
// under real vendor chat templates, its answer forced into a call by a JSON-schema `format` (the
// grammar the daemon builds for any request), read back as `tool_calls` by the real `ollama` and
// `openai` clients (chat completions and responses), streamed and not; then the call and the
// tool's result rendered into the next prompt. Llama 3.2's template announces its calls with no tag, so the forced JSON alone is the
// call; a template with a tag (Qwen 2.5's `<tool_call>`) leaves the same JSON as content.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";
import { Ollama, type Message } from "ollama";
import OpenAI from "openai";
import { createModelFrom, startDaemon, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";

const template = (name: string): string => readFileSync(new URL(`./fixtures/tool-templates/${name}`, import.meta.url), "utf8");
const LLAMA32 = template("llama-3.2-3b-instruct.jinja");
const QWEN25 = template("qwen2.5-7b-instruct.jinja");
const NEMO = template("mistral-nemo-instruct-2407.jinja");

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

/** A call to get_weather for Paris, the only JSON the grammar lets the model write. */
const callSchema = {
  type: "object",
  properties: {
    name: { const: "get_weather" },
    parameters: { type: "object", properties: { city: { const: "Paris" } }, required: ["city"] },
  },
  required: ["name", "parameters"],
};

let daemon: Daemon;
let ollama: Ollama;
let openai: OpenAI;

before(async () => {
  daemon = await startDaemon();
  ollama = new Ollama({ host: daemon.url });
  openai = new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: "unused", maxRetries: 0 });
  const parameters = { temperature: 0, num_predict: 160, num_ctx: 2048 };
  await createModelFrom(daemon, { model: "llama-tools", path: fixtures.stories260K, extra: { template: LLAMA32, parameters } });
  await createModelFrom(daemon, { model: "qwen-tools", path: fixtures.stories260K, extra: { template: QWEN25, parameters } });
  await createModelFrom(daemon, { model: "nemo-tools", path: fixtures.stories260K, extra: { template: NEMO, parameters } });
});

after(async () => {
  await daemon?.stop();
});

const ask: Message[] = [{ role: "user", content: "What is the weather in Paris?" }];

test("the model's templates report the tools capability", async () => {
  for (const model of ["llama-tools", "qwen-tools", "nemo-tools"]) {
    const show = await ollama.show({ model });
    assert.ok(show.capabilities.includes("tools"), `${model}: ${show.capabilities.join(",")}`);
  }
});

test("ollama client, not streamed: the forced JSON is a call with an id, no content", async () => {
  const r = await ollama.chat({ model: "llama-tools", messages: ask, tools: [weatherTool], format: callSchema, stream: false });
  assert.equal(r.message.content, "");
  assert.equal(r.message.tool_calls?.length, 1, JSON.stringify(r.message));
  const call = r.message.tool_calls![0]! as { id?: string; function: { index?: number; name: string; arguments: Record<string, unknown> } };
  assert.match(call.id ?? "", /^call_[a-z0-9]{8}$/);
  assert.equal(call.function.index, 0);
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(call.function.arguments, { city: "Paris" });
  assert.equal(r.done_reason, "stop");
});

test("ollama client, streamed: one chunk carries the call, no chunk carries its JSON as content", async () => {
  const chunks = [];
  for await (const c of await ollama.chat({ model: "llama-tools", messages: ask, tools: [weatherTool], format: callSchema, stream: true })) chunks.push(c);
  const withCalls = chunks.filter((c) => (c.message.tool_calls?.length ?? 0) > 0);
  assert.equal(withCalls.length, 1);
  assert.equal(withCalls[0]!.message.tool_calls![0]!.function.name, "get_weather");
  assert.equal(chunks.map((c) => c.message.content).join(""), "");
  assert.equal(chunks.at(-1)!.done, true);
});

test("without tools the same answer is content; under a template with a tag, JSON without the tag is content", async () => {
  const plain = await ollama.chat({ model: "llama-tools", messages: ask, format: callSchema, stream: false });
  assert.equal(plain.message.tool_calls, undefined);
  assert.deepEqual(JSON.parse(plain.message.content), { name: "get_weather", parameters: { city: "Paris" } });
  const qwen = await ollama.chat({ model: "qwen-tools", messages: ask, tools: [weatherTool], format: callSchema, stream: false });
  assert.equal(qwen.message.tool_calls, undefined);
  assert.deepEqual(JSON.parse(qwen.message.content), { name: "get_weather", parameters: { city: "Paris" } });
  // A call to a tool the request does not offer is no call either.
  const other = { ...weatherTool, function: { ...weatherTool.function, name: "get_time" } };
  const unknown = await ollama.chat({ model: "llama-tools", messages: ask, tools: [other], format: callSchema, stream: false });
  assert.equal(unknown.message.tool_calls, undefined);
  assert.match(unknown.message.content, /get_weather/);
});

test("openai client, not streamed: tool_calls with a call_ id, arguments as a JSON string, finish_reason tool_calls", async () => {
  const r = await openai.chat.completions.create({
    model: "llama-tools",
    messages: [{ role: "user", content: "What is the weather in Paris?" }],
    tools: [weatherTool],
    response_format: { type: "json_schema", json_schema: { name: "call", schema: callSchema } },
  });
  const choice = r.choices[0]!;
  assert.equal(choice.finish_reason, "tool_calls");
  const call = choice.message.tool_calls?.[0];
  assert.ok(call && call.type === "function", JSON.stringify(choice.message));
  assert.match(call.id, /^call_[a-z0-9]{8}$/);
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
});

test("openai client, streamed: a delta carries the call, the stream finishes with tool_calls", async () => {
  const stream = await openai.chat.completions.create({
    model: "llama-tools",
    messages: [{ role: "user", content: "What is the weather in Paris?" }],
    tools: [weatherTool],
    response_format: { type: "json_schema", json_schema: { name: "call", schema: callSchema } },
    stream: true,
  });
  const deltas = [];
  let finish: string | null = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    deltas.push(choice.delta);
    finish = choice.finish_reason ?? finish;
  }
  const calls = deltas.flatMap((d) => d.tool_calls ?? []);
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.index, 0);
  assert.match(calls[0]!.id ?? "", /^call_[a-z0-9]{8}$/);
  assert.equal(calls[0]!.function?.name, "get_weather");
  assert.deepEqual(JSON.parse(calls[0]!.function?.arguments ?? ""), { city: "Paris" });
  assert.equal(deltas.map((d) => d.content ?? "").join(""), "");
  assert.equal(finish, "tool_calls");
});

/** The prompt `template` makes of `messages`, rendered by @huggingface/jinja itself. */
function expectedPrompt(messages: Array<Record<string, unknown>>, template = LLAMA32): string {
  return new Template(template).render({ messages, tools: [weatherTool], add_generation_prompt: true, bos_token: "<s>", eos_token: "</s>" });
}

/** How many tokens the daemon reads for `text` as a raw prompt. */
async function rawTokens(text: string): Promise<number> {
  const r = await ollama.generate({ model: "llama-tools", prompt: text, raw: true, stream: false, options: { num_predict: 1 } });
  return r.prompt_eval_count;
}

test("two turns: the call and the tool's result are rendered into the next prompt (ollama and openai clients)", async () => {
  const first = await ollama.chat({ model: "llama-tools", messages: ask, tools: [weatherTool], format: callSchema, stream: false });
  const call = first.message.tool_calls![0]!;
  const next: Message[] = [...ask, { role: "assistant", content: "", tool_calls: [call] }, { role: "tool", content: "Sunny, 24 degrees", tool_name: "get_weather" } as Message];
  const second = await ollama.chat({ model: "llama-tools", messages: next, tools: [weatherTool], stream: false, options: { num_predict: 1 } });

  const rendered = expectedPrompt([
    { role: "user", content: "What is the weather in Paris?" },
    { role: "assistant", content: "", tool_calls: [{ id: (call as { id?: string }).id, type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }] },
    { role: "tool", content: "Sunny, 24 degrees", name: "get_weather" },
  ]);
  assert.match(rendered, /\{"name": "get_weather", "parameters": \{"city": "Paris"\}\}<\|eot_id\|>/);
  // The template writes a result as JSON (a string is iterable to Jinja).
  assert.match(rendered, /<\|start_header_id\|>ipython<\|end_header_id\|>\n\n"Sunny, 24 degrees"<\|eot_id\|>/);
  const withoutResult = expectedPrompt([{ role: "user", content: "What is the weather in Paris?" }]);
  const want = await rawTokens(rendered);
  assert.notEqual(want, await rawTokens(withoutResult));
  assert.equal(second.prompt_eval_count, want);

  // The same conversation through the OpenAI client: the result names its call by id.
  const viaOpenAI = await openai.chat.completions.create({
    model: "llama-tools",
    messages: [
      { role: "user", content: "What is the weather in Paris?" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_abc12345", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", tool_call_id: "call_abc12345", content: "Sunny, 24 degrees" },
    ],
    tools: [weatherTool],
    max_tokens: 1,
  });
  assert.equal(viaOpenAI.usage?.prompt_tokens, want);
});

test("two turns under Mistral Nemo's template: the call and its result carry the call's id into the prompt", async () => {
  // This template insists on nine-character ids, on the call and on the result that answers it.
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: "user", content: "What is the weather in Paris?" },
    { role: "assistant", content: null, tool_calls: [{ id: "a1b2c3d4e", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
    { role: "tool", tool_call_id: "a1b2c3d4e", content: "Sunny" },
  ];
  const r = await openai.chat.completions.create({ model: "nemo-tools", messages, tools: [weatherTool], max_tokens: 1 });
  const rendered = expectedPrompt(
    [
      { role: "user", content: "What is the weather in Paris?" },
      { role: "assistant", content: "", tool_calls: [{ id: "a1b2c3d4e", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }] },
      { role: "tool", tool_call_id: "a1b2c3d4e", content: "Sunny" },
    ],
    NEMO,
  );
  assert.match(rendered, /\[TOOL_CALLS\]\[\{"name": "get_weather", "arguments": \{"city": "Paris"\}, "id": "a1b2c3d4e"\}\]<\/s>\[TOOL_RESULTS\]\{"content": Sunny, "call_id": "a1b2c3d4e"\}\[\/TOOL_RESULTS\]$/);
  assert.equal(r.usage?.prompt_tokens, await rawTokens(rendered));
});

const responsesTool = { type: "function" as const, name: "get_weather", description: "Weather", parameters: weatherTool.function.parameters, strict: false };
const callFormat = { format: { type: "json_schema" as const, name: "call", schema: callSchema } };

test("/v1/responses, not streamed: the call is a function_call output item, the tools are echoed", async () => {
  const r = await openai.responses.create({ model: "llama-tools", input: "What is the weather in Paris?", tools: [responsesTool], text: callFormat });
  assert.equal(r.output.length, 1, JSON.stringify(r.output));
  const item = r.output[0]!;
  assert.ok(item.type === "function_call", JSON.stringify(item));
  assert.match(item.call_id, /^call_[a-z0-9]{8}$/);
  assert.equal(item.name, "get_weather");
  assert.deepEqual(JSON.parse(item.arguments), { city: "Paris" });
  assert.equal(r.tools.length, 1);
  assert.equal((r.tools[0] as { name: string }).name, "get_weather");
});

test("/v1/responses, streamed: the function_call item is added, its arguments sent and done, and the response holds it", async () => {
  const stream = await openai.responses.create({ model: "llama-tools", input: "What is the weather in Paris?", tools: [responsesTool], text: callFormat, stream: true });
  const types: string[] = [];
  let args = "";
  let final: OpenAI.Responses.Response | undefined;
  for await (const e of stream) {
    types.push(e.type);
    if (e.type === "response.function_call_arguments.delta") args += e.delta;
    if (e.type === "response.completed") final = e.response;
  }
  assert.deepEqual(
    types.filter((t) => t.includes("output_item") || t.includes("function_call") || t.includes("output_text")),
    ["response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done"],
  );
  assert.deepEqual(JSON.parse(args), { city: "Paris" });
  const item = final?.output[0];
  assert.ok(item?.type === "function_call" && item.name === "get_weather", JSON.stringify(final?.output));
});

test("/v1/responses: a past function_call and its function_call_output render as the call and the tool's result", async () => {
  const r = await openai.responses.create({
    model: "llama-tools",
    input: [
      { role: "user", content: "What is the weather in Paris?" },
      { type: "function_call", call_id: "call_abc12345", name: "get_weather", arguments: '{"city":"Paris"}' },
      { type: "function_call_output", call_id: "call_abc12345", output: "Sunny, 24 degrees" },
    ],
    tools: [responsesTool],
    max_output_tokens: 1,
  });
  const rendered = expectedPrompt([
    { role: "user", content: "What is the weather in Paris?" },
    { role: "assistant", content: "", tool_calls: [{ id: "call_abc12345", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }] },
    { role: "tool", content: "Sunny, 24 degrees", tool_call_id: "call_abc12345" },
  ]);
  assert.equal(r.usage?.input_tokens, await rawTokens(rendered));
});
