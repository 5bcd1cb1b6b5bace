// Thinking end to end (docs/daemon.md, "Thinking and tool calls"): real chat templates with thinking
// (DeepSeek-R1's and Qwen3's Jinja templates, a Qwen3-style Go template: test/fixtures/thinking-templates) on
// the stories260K model, through the `ollama` and `openai` npm clients and the `corral` CLI.
// At temperature 0 a generation is deterministic, so the same request without thinking shows
// exactly what the model wrote; with thinking, that text must come back split. The tiny model
// never writes `</think>` itself: where a prompt ends inside the thinking block, all it writes is
// thinking, and a `format` pattern makes it write a closing tag where one is needed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Ollama, type ChatResponse, type GenerateResponse } from "ollama";
import OpenAI from "openai";
import { createModelFrom, runCLI, startDaemon, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { newResponseContext, responseStreamEvents } from "../src/api/openai/responses.ts";
import { NamedEvent } from "../src/api/openai/sse.ts";

const fixture = (path: string): string => readFileSync(new URL(`./fixtures/${path}`, import.meta.url), "utf8");

let daemon: Daemon;
let ollama: Ollama;

const PROMPT = "Once upon a time";
/** The Qwen3-style template's generation prompt for PROMPT, with thinking on and off. */
const QWEN_PROMPT = `<|im_start|>user\n${PROMPT}<|im_end|>\n<|im_start|>assistant\n`;
const QWEN_NO_THINK = `${QWEN_PROMPT}<think>\n\n</think>\n\n`;
/** A JSON string that closes the thinking partway: `"deep</think> sea"`. */
const CLOSES = { type: "string", pattern: "^deep</think> sea$" };

before(async () => {
  daemon = await startDaemon();
  ollama = new Ollama({ host: daemon.url });
  const parameters = { temperature: 0, num_predict: 16 };
  const models: Record<string, string> = {
    r1: fixture("thinking-templates/llama-cpp-deepseek-r1.jinja"),
    "r1-distill": fixture("chat-templates/deepseek-r1-distill-llama-8b.jinja"),
    qwen: fixture("thinking-templates/qwen3-style.gotmpl"),
    "qwen-jinja": fixture("thinking-templates/qwen3.jinja"),
    // Named like Ollama's DeepSeek-R1 models, whose earlier answers lose their thinking.
    "deepseek-r1": fixture("thinking-templates/qwen3-style.gotmpl"),
    plain: "{{ .Prompt }}",
  };
  for (const [model, template] of Object.entries(models)) await createModelFrom(daemon, { model, path: fixtures.stories260K, extra: { template, parameters } });
});

after(async () => {
  await daemon?.stop();
});

const user = [{ role: "user", content: PROMPT }];

async function chatStream(req: { model: string; think?: boolean }): Promise<ChatResponse[]> {
  const parts: ChatResponse[] = [];
  for await (const c of await ollama.chat({ ...req, messages: user, stream: true })) parts.push(c);
  return parts;
}

async function generateStream(req: { model: string; prompt: string; think?: boolean; format?: object }): Promise<GenerateResponse[]> {
  const parts: GenerateResponse[] = [];
  for await (const c of await ollama.generate({ ...req, stream: true })) parts.push(c);
  return parts;
}

const joinedThinking = (parts: ReadonlyArray<{ thinking?: string }>): string => parts.map((p) => p.thinking ?? "").join("");

test("show: templates with thinking tags can think, Go and Jinja alike; a plain one cannot", async () => {
  for (const model of ["r1", "r1-distill", "qwen", "qwen-jinja"]) assert.ok((await ollama.show({ model })).capabilities.includes("thinking"), model);
  assert.ok(!(await ollama.show({ model: "plain" })).capabilities.includes("thinking"));
  await assert.rejects(ollama.generate({ model: "plain", prompt: PROMPT, think: true }), /"plain" does not support thinking/);
});

test("chat: a prompt that ends inside <think> makes all the model writes thinking; think: false leaves it content", async () => {
  for (const model of ["r1", "r1-distill"]) {
    const plain = await ollama.chat({ model, messages: user, think: false, stream: false });
    const written = plain.message.content;
    assert.ok(written.trim().length > 0 && plain.message.thinking === undefined, JSON.stringify(plain.message));

    const thought = await ollama.chat({ model, messages: user, think: true, stream: false });
    assert.deepEqual({ thinking: thought.message.thinking, content: thought.message.content }, { thinking: written.trimStart(), content: "" }, model);
    // A model that can think thinks unless told not to.
    const unset = await ollama.chat({ model, messages: user, stream: false });
    assert.deepEqual(unset.message, thought.message, model);
  }
});

test("chat, streamed: the thinking comes in pieces, the content stays empty", async () => {
  const written = (await ollama.chat({ model: "r1", messages: user, think: false, stream: false })).message.content;
  const parts = await chatStream({ model: "r1", think: true });
  assert.equal(joinedThinking(parts.map((p) => p.message)), written.trimStart());
  assert.ok(parts.filter((p) => p.message.thinking).length > 1, "more than one chunk of thinking");
  assert.deepEqual(parts.map((p) => p.message.content).filter(Boolean), []);
  assert.equal(parts.at(-1)?.done, true);
});

test("generate: the same split, streamed and not", async () => {
  const written = (await ollama.generate({ model: "r1", prompt: PROMPT, think: false, stream: false })).response ?? "";
  assert.ok(written.trim().length > 0);
  const whole = await ollama.generate({ model: "r1", prompt: PROMPT, think: true, stream: false });
  assert.deepEqual({ thinking: whole.thinking, response: whole.response }, { thinking: written.trimStart(), response: "" });
  assert.ok(Array.isArray(whole.context) && whole.context.length > 0, "the context is the prompt and the raw answer");

  const parts = await generateStream({ model: "r1", prompt: PROMPT, think: true });
  assert.equal(joinedThinking(parts), written.trimStart());
  assert.deepEqual(parts.map((p) => p.response).filter(Boolean), []);
});

test("generate: a closing tag the model writes ends the thinking, whitespace after it dropped, held back while it forms", async () => {
  const written = (await ollama.generate({ model: "r1", prompt: PROMPT, think: false, format: CLOSES, stream: false, options: { num_predict: 64 } })).response ?? "";
  assert.ok(written.startsWith('"deep</think> sea"'), written);
  const want = { thinking: '"deep', response: written.slice(written.indexOf("</think>") + "</think>".length).trimStart() };

  const whole = await ollama.generate({ model: "r1", prompt: PROMPT, think: true, format: CLOSES, stream: false, options: { num_predict: 64 } });
  assert.deepEqual({ thinking: whole.thinking, response: whole.response }, want);

  const parts: GenerateResponse[] = [];
  for await (const c of await ollama.generate({ model: "r1", prompt: PROMPT, think: true, format: CLOSES, stream: true, options: { num_predict: 64 } })) parts.push(c);
  assert.deepEqual({ thinking: joinedThinking(parts), response: parts.map((p) => p.response).join("") }, want);
  // While the tag forms nothing is given out, but every token still has its chunk, as Ollama's generate sends them.
  assert.ok(parts.some((p) => !p.done && p.response === "" && !p.thinking), "a chunk held back");
  assert.ok(!parts.some((p) => (p.thinking ?? "").includes("<") || (p.response ?? "").includes("<")), "no part of the tag comes out");
});

test("generate, Qwen3 templates (Go and Jinja): an answer that does not open with <think> is content as written; think: false renders the empty block", async () => {
  const rawOf = async (prompt: string): Promise<string> => (await ollama.generate({ model: "plain", prompt, raw: true, stream: false })).response ?? "";
  const [on, off] = [await rawOf(QWEN_PROMPT), await rawOf(QWEN_NO_THINK)];
  assert.notEqual(on, off, "the two prompts differ");
  // The Go template reads .Think and .IsThinkSet, the Jinja one `enable_thinking`.
  for (const model of ["qwen", "qwen-jinja"]) {
    const thinking = await ollama.generate({ model, prompt: PROMPT, think: true, stream: false });
    assert.deepEqual({ thinking: thinking.thinking, response: thinking.response }, { thinking: undefined, response: on }, model);
    const unset = await ollama.generate({ model, prompt: PROMPT, stream: false });
    assert.equal(unset.response, on, model);
    const not = await ollama.generate({ model, prompt: PROMPT, think: false, stream: false });
    assert.deepEqual({ thinking: not.thinking, response: not.response }, { thinking: undefined, response: off }, model);
  }
});

test("generate, raw: a raw prompt ending with the model's opening tag starts inside the thinking", async () => {
  const prompt = `${PROMPT}<think>`;
  const written = (await ollama.generate({ model: "plain", prompt, raw: true, stream: false })).response ?? "";
  const thought = await ollama.generate({ model: "qwen", prompt, raw: true, stream: false });
  assert.deepEqual({ thinking: thought.thinking, response: thought.response }, { thinking: written.trimStart(), response: "" });
  const off = await ollama.generate({ model: "qwen", prompt, raw: true, think: false, stream: false });
  assert.deepEqual({ thinking: off.thinking, response: off.response }, { thinking: undefined, response: written });
});

test("chat: a deepseek-r1 model's earlier answers lose their thinking before the prompt is built", async () => {
  const history = (answer: string): Array<{ role: string; content: string }> => [
    { role: "user", content: "Once" },
    { role: "assistant", content: answer },
    { role: "user", content: PROMPT },
  ];
  const ask = async (model: string, answer: string): Promise<string> => (await ollama.chat({ model, messages: history(answer), think: false, stream: false })).message.content;
  const stripped = await ask("qwen", "upon a time");
  assert.equal(await ask("deepseek-r1", "<think>\nwho is it about?\n</think>\n\nupon a time"), stripped);
  assert.notEqual(await ask("qwen", "<think>\nwho is it about?\n</think>\n\nupon a time"), stripped, "other models see the thinking");
});

test("/v1/completions answers with the text after the thinking only, as Ollama's does", async () => {
  const openai = new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: "unused" });
  const thinks = await openai.completions.create({ model: "r1", prompt: PROMPT, temperature: 0, max_tokens: 16 });
  assert.equal(thinks.choices[0]?.text, "");
  const writes = await openai.completions.create({ model: "qwen", prompt: PROMPT, temperature: 0, max_tokens: 16 });
  assert.equal(writes.choices[0]?.text, (await ollama.generate({ model: "qwen", prompt: PROMPT, stream: false })).response);
});

test("/v1/responses: the thinking is a reasoning item ahead of the message, streamed and not", async () => {
  const written = (await ollama.chat({ model: "r1", messages: user, think: false, stream: false })).message.content;
  const thinking = written.trimStart();
  const openai = new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: "unused" });
  const whole = await openai.responses.create({ model: "r1", input: PROMPT, temperature: 0 });
  const reasoning = { type: "reasoning", summary: [{ type: "summary_text", text: thinking }], encrypted_content: thinking };
  assert.deepEqual(
    whole.output.map(({ id: _, ...item }) => item),
    [reasoning, { type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: "", annotations: [], logprobs: [] }] }],
  );

  const events: Array<{ type: string } & Record<string, unknown>> = [];
  for await (const e of await openai.responses.create({ model: "r1", input: PROMPT, temperature: 0, stream: true })) events.push(e as unknown as { type: string } & Record<string, unknown>);
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 3), ["response.created", "response.in_progress", "response.output_item.added"]);
  assert.deepEqual(types.slice(-3), ["response.reasoning_summary_text.done", "response.output_item.done", "response.incomplete"]);
  const deltas = events.filter((e) => e.type === "response.reasoning_summary_text.delta");
  assert.equal(deltas.map((e) => e["delta"]).join(""), thinking);
  assert.equal(deltas.length, types.length - 6, "nothing else in between");
  const final = events.at(-1)!["response"] as { output: Array<Record<string, unknown>> };
  assert.deepEqual(final.output.map(({ id: _, ...item }) => item), [reasoning], "no text, no message item");
});

test("/v1/responses stream: thinking then text puts the message after the reasoning item", async () => {
  const ctx = newResponseContext({ model: "m" });
  const at = "2025-05-04T17:37:44.706015396Z";
  const chunk = (message: Record<string, unknown>, done = false): Record<string, unknown> => ({ model: "m", created_at: at, message: { role: "assistant", content: "", ...message }, done, ...(done ? { done_reason: "stop" } : {}) });
  async function* lines(): AsyncGenerator<Record<string, unknown>> {
    yield chunk({ thinking: "let me" });
    yield chunk({ thinking: " see", content: "It" });
    yield chunk({ content: " is." }, true);
  }
  const events: Array<Record<string, unknown>> = [];
  for await (const e of responseStreamEvents(ctx, lines())) events.push((e as NamedEvent).data as Record<string, unknown>);
  const brief = events.map((e) => [e["type"], e["output_index"] ?? null, e["delta"] ?? e["text"] ?? null]);
  assert.deepEqual(brief, [
    ["response.created", null, null],
    ["response.in_progress", null, null],
    ["response.output_item.added", 0, null],
    ["response.reasoning_summary_text.delta", 0, "let me"],
    ["response.reasoning_summary_text.delta", 0, " see"],
    ["response.reasoning_summary_text.done", 0, "let me see"],
    ["response.output_item.done", 0, null],
    ["response.output_item.added", 1, null],
    ["response.content_part.added", 1, null],
    ["response.output_text.delta", 1, "It"],
    ["response.output_text.delta", 1, " is."],
    ["response.output_text.done", 1, "It is."],
    ["response.content_part.done", 1, null],
    ["response.output_item.done", 1, null],
    ["response.completed", null, null],
  ]);
  const output = (events.at(-1)!["response"] as { output: Array<{ type: string }> }).output;
  assert.deepEqual(output.map((o) => o.type), ["reasoning", "message"]);
  assert.deepEqual(events.map((e) => e["sequence_number"]), events.map((_, i) => i));
});

test("corral run: thinking between its markers (no content, so no closing one); --hidethinking and --think=false", async () => {
  const written = (await ollama.generate({ model: "r1", prompt: PROMPT, think: false, stream: false })).response ?? "";
  const shown = await runCLI(daemon, ["run", "r1", PROMPT]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(shown.stdout, `Thinking...\n${written.trimStart()}\n\n`);
  const hidden = await runCLI(daemon, ["run", "r1", "--hidethinking", PROMPT]);
  assert.equal(hidden.code, 0, hidden.stderr);
  assert.equal(hidden.stdout, "\n\n");
  const off = await runCLI(daemon, ["run", "r1", "--think=false", PROMPT]);
  assert.equal(off.code, 0, off.stderr);
  assert.equal(off.stdout, `${written}\n\n`);
});

test("corral run: thinking, then the marker that ends it, then the answer", async () => {
  // The Qwen3-style model's raw prompt cannot be given to `run`; the format forces a closing tag on R1.
  const written = (await ollama.generate({ model: "r1", prompt: PROMPT, think: false, format: CLOSES, stream: false })).response ?? "";
  assert.ok(written.includes("</think>"), written);
  const answer = written.slice(written.indexOf("</think>") + "</think>".length).trimStart();
  const shown = await runCLI(daemon, ["run", "r1", "--format", JSON.stringify(CLOSES), PROMPT]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(shown.stdout, `Thinking...\n"deep\n...done thinking.\n\n${answer}\n\n`);
});
