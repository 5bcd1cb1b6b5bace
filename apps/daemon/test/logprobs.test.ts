// `logprobs` and `top_logprobs` as Ollama answers them, through the official `ollama` and `openai`
// npm clients against a real `corral serve` with stories260K: one entry per generated token whose
// texts join to the answer, the values the log-softmax of the model's raw logits (not the
// probabilities after sampling), streamed chunks carrying their own tokens', the OpenAI shapes,
// greedy answers unchanged by asking, and Ollama's 400 for a count out of range.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Ollama, type Logprob } from "ollama";
import OpenAI from "openai";
import { createModelFrom, startDaemon, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";

let daemon: Daemon;
let ollama: Ollama;
let openai: OpenAI;

function createFrom(model: string, extra: Record<string, unknown>): Promise<void> {
  return createModelFrom(daemon, { model, path: fixtures.stories260K, extra });
}

before(async () => {
  daemon = await startDaemon();
  ollama = new Ollama({ host: daemon.url });
  openai = new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: "unused", maxRetries: 0 });
  await createFrom("story", { template: "{{ .Prompt }}", parameters: { temperature: 0, num_predict: 16 } });
  await createFrom("story-chat", { template: "{{ range .Messages }}{{ .Content }}{{ end }}", parameters: { temperature: 0, num_predict: 16 } });
});

after(async () => {
  await daemon?.stop();
});

const PROMPT = "Once upon a time";

/** What every answer's log-probabilities must satisfy, greedy (temperature 0) with `top` alternatives. */
function checkGreedyLogprobs(logprobs: Logprob[] | undefined, opts: { text: string; count: number; top: number }): void {
  assert.ok(logprobs, "logprobs present");
  assert.equal(logprobs.length, opts.count, "one entry per generated token");
  assert.equal(logprobs.map((l) => l.token).join(""), opts.text, "the tokens join to the answer");
  let notCertain = 0;
  for (const l of logprobs) {
    assert.ok(l.logprob <= 0 && Number.isFinite(l.logprob), `logprob ${l.logprob}`);
    // The npm client's type leaves it out, but Ollama writes it.
    const bytes = (l as Logprob & { bytes?: number[] }).bytes;
    if (l.token !== "") assert.deepEqual(bytes, [...Buffer.from(l.token, "utf8")], "bytes are the token's UTF-8 bytes");
    if (l.logprob < -1e-3) notCertain++;
    if (opts.top === 0) {
      assert.equal(l.top_logprobs, undefined, "no alternatives without top_logprobs");
      continue;
    }
    const top = l.top_logprobs ?? [];
    assert.equal(top.length, opts.top, "top_logprobs lists as many as asked");
    for (let i = 1; i < top.length; i++) assert.ok(top[i - 1]!.logprob >= top[i]!.logprob, "sorted, most likely first");
    // Greedy writes the most likely token, and its value is the same as the first alternative's.
    assert.equal(top[0]!.token, l.token);
    assert.equal(top[0]!.logprob, l.logprob);
    // Log-softmax over the whole vocabulary: the listed ones hold at most all of the mass.
    const mass = top.reduce((sum, t) => sum + Math.exp(t.logprob), 0);
    assert.ok(mass <= 1 + 1e-6, `top mass ${mass}`);
  }
  // After sampling at temperature 0 the chosen token has probability 1 (logprob 0); the model's
  // own distribution for this small model is never that sure of every token.
  assert.ok(notCertain > 0, "raw-logit log-probabilities, not the post-sampling ones");
}

test("generate, not streamed: one log-probability per token, raw-logit values, alternatives sorted", async () => {
  const r = await ollama.generate({ model: "story", prompt: PROMPT, stream: false, logprobs: true, top_logprobs: 5 });
  checkGreedyLogprobs(r.logprobs, { text: r.response ?? "", count: r.eval_count, top: 5 });
  // The raw values do not depend on sampling settings, so asking at a higher temperature gives the
  // first token's distribution unchanged.
  const hot = await ollama.generate({ model: "story", prompt: PROMPT, stream: false, logprobs: true, top_logprobs: 5, options: { temperature: 1.5, num_predict: 1, seed: 7 } });
  const [first] = hot.logprobs ?? [];
  assert.ok(first);
  assert.deepEqual(first.top_logprobs, r.logprobs![0]!.top_logprobs);
});

test("generate without top_logprobs: only the chosen tokens' values", async () => {
  const r = await ollama.generate({ model: "story", prompt: PROMPT, stream: false, logprobs: true });
  checkGreedyLogprobs(r.logprobs, { text: r.response ?? "", count: r.eval_count, top: 0 });
});

test("greedy answers are the same with logprobs as without", async () => {
  const cases = [
    { num_predict: 60 },
    { num_predict: 40, repeat_penalty: 1.3, repeat_last_n: 16 },
    { num_predict: 40, stop: ["park"] },
    // Past the context window (ten windows of 32 tokens, the context shifting on the way).
    { num_predict: -1, num_ctx: 32 },
  ];
  for (const options of cases) {
    const plain = await ollama.generate({ model: "story", prompt: PROMPT, stream: false, options });
    const withLogprobs = await ollama.generate({ model: "story", prompt: PROMPT, stream: false, options, logprobs: true, top_logprobs: 2 });
    // The answer has its log-probabilities. With a stop sequence eval_count also counts the tokens
    // of the stop, which have none, and the last entry is a whole token the stop may begin inside.
    const joined = (withLogprobs.logprobs ?? []).map((l) => l.token).join("");
    if ("stop" in options) assert.ok(joined.length > 0 && joined.startsWith(withLogprobs.response ?? ""), joined);
    else assert.equal(withLogprobs.logprobs?.length, withLogprobs.eval_count);
    assert.equal(withLogprobs.response, plain.response, JSON.stringify(options));
    assert.equal(withLogprobs.eval_count, plain.eval_count);
    assert.equal(withLogprobs.done_reason, plain.done_reason);
    assert.deepEqual(withLogprobs.context, plain.context);
  }
  const chatPlain = await ollama.chat({ model: "story-chat", messages: [{ role: "user", content: PROMPT }], stream: false });
  const chatLogprobs = await ollama.chat({ model: "story-chat", messages: [{ role: "user", content: PROMPT }], stream: false, logprobs: true });
  assert.equal(chatLogprobs.message.content, chatPlain.message.content);
});

test("a stop sequence: entries for the tokens written before it", async () => {
  const r = await ollama.generate({ model: "story", prompt: PROMPT, stream: false, logprobs: true, options: { num_predict: 40, stop: [" girl"] } });
  assert.equal(r.done_reason, "stop");
  const response = r.response ?? "";
  assert.ok(response.length > 0 && !response.includes("girl"), response);
  assert.equal((r.logprobs ?? []).map((l) => l.token).join(""), response);
});

test("generate, streamed: each chunk carries the log-probabilities of its own tokens", async () => {
  const whole = await ollama.generate({ model: "story", prompt: PROMPT, stream: false, logprobs: true, top_logprobs: 3 });
  const streamed: Logprob[] = [];
  let text = "";
  for await (const part of await ollama.generate({ model: "story", prompt: PROMPT, stream: true, logprobs: true, top_logprobs: 3 })) {
    if (part.done) {
      assert.equal(part.logprobs, undefined, "the final chunk holds metrics only");
      continue;
    }
    assert.ok(part.logprobs && part.logprobs.length > 0, `chunk ${JSON.stringify(part.response)} has its tokens' logprobs`);
    assert.equal(part.logprobs.map((l) => l.token).join(""), part.response);
    streamed.push(...part.logprobs);
    text += part.response;
  }
  assert.equal(text, whole.response);
  assert.deepEqual(streamed, whole.logprobs);
});

test("chat, streamed and not", async () => {
  const messages = [{ role: "user", content: PROMPT }];
  const r = await ollama.chat({ model: "story-chat", messages, stream: false, logprobs: true, top_logprobs: 4 });
  checkGreedyLogprobs(r.logprobs, { text: r.message.content, count: r.eval_count, top: 4 });
  const streamed: Logprob[] = [];
  for await (const part of await ollama.chat({ model: "story-chat", messages, stream: true, logprobs: true, top_logprobs: 4 })) {
    if (!part.done) assert.equal((part.logprobs ?? []).map((l) => l.token).join(""), part.message.content);
    streamed.push(...(part.logprobs ?? []));
  }
  assert.deepEqual(streamed, r.logprobs);
});

test("the non-streamed answer puts logprobs where Ollama's does: before the metrics", async () => {
  const r = await fetch(`${daemon.url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({ model: "story-chat", messages: [{ role: "user", content: PROMPT }], stream: false, logprobs: true }),
  });
  const keys = Object.keys((await r.json()) as Record<string, unknown>);
  assert.deepEqual(keys.slice(0, 6), ["model", "created_at", "message", "done", "done_reason", "logprobs"]);
  assert.equal(keys[6], "total_duration");
  // top_logprobs alone asks for nothing: the answer has no such field.
  const plain = await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story", prompt: PROMPT, stream: false, top_logprobs: 3 }) });
  assert.equal(plain.status, 200);
  assert.equal("logprobs" in ((await plain.json()) as Record<string, unknown>), false);
});

test("top_logprobs out of range is Ollama's 400, before the model is looked up", async () => {
  for (const top_logprobs of [25, 21, -1]) {
    for (const [path, body] of [
      ["/api/generate", { model: "story", prompt: PROMPT, logprobs: true, top_logprobs }],
      ["/api/chat", { model: "story-chat", messages: [{ role: "user", content: PROMPT }], logprobs: true, top_logprobs }],
      // Checked before the model: an unknown model or none at all gets the same answer.
      ["/api/generate", { model: "no-such-model", prompt: PROMPT, top_logprobs }],
      ["/api/chat", { messages: [], top_logprobs }],
    ] as const) {
      const r = await fetch(`${daemon.url}${path}`, { method: "POST", body: JSON.stringify(body) });
      assert.equal(r.status, 400, `${path} ${top_logprobs}`);
      assert.deepEqual(await r.json(), { error: "top_logprobs must be between 0 and 20" });
    }
  }
  await assert.rejects(ollama.generate({ model: "story", prompt: PROMPT, stream: false, logprobs: true, top_logprobs: 25 }), /top_logprobs must be between 0 and 20/);
  const edge = await ollama.generate({ model: "story", prompt: PROMPT, stream: false, logprobs: true, top_logprobs: 20, options: { num_predict: 2 } });
  assert.equal(edge.logprobs?.[0]?.top_logprobs?.length, 20);
});

test("logprobs with format is refused with one clear line", async () => {
  const r = await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story", prompt: PROMPT, format: "json", logprobs: true, stream: false }) });
  assert.equal(r.status, 400);
  const { error } = (await r.json()) as { error: string };
  assert.match(error, /^logprobs cannot be combined with format/);
});

test("OpenAI chat completions: choices[].logprobs.content, streamed and not", async () => {
  const request = { model: "story-chat", messages: [{ role: "user" as const, content: PROMPT }], temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 3 };
  const r = await openai.chat.completions.create(request);
  const choice = r.choices[0]!;
  const content = choice.logprobs?.content ?? [];
  assert.equal(content.length, r.usage?.completion_tokens);
  assert.equal(content.map((c) => c.token).join(""), choice.message.content);
  for (const c of content) {
    assert.ok(c.logprob <= 0);
    assert.equal(c.top_logprobs.length, 3);
    assert.equal(c.top_logprobs[0]!.token, c.token);
  }
  const streamed: unknown[] = [];
  let text = "";
  for await (const chunk of await openai.chat.completions.create({ ...request, stream: true })) {
    const c = chunk.choices[0];
    text += c?.delta.content ?? "";
    if (c?.delta.content) assert.equal((c.logprobs?.content ?? []).map((l) => l.token).join(""), c.delta.content);
    streamed.push(...(c?.logprobs?.content ?? []));
  }
  assert.equal(text, choice.message.content);
  assert.deepEqual(streamed, content);
  // Without logprobs there are none.
  const plain = await openai.chat.completions.create({ ...request, logprobs: false, top_logprobs: 0 });
  assert.equal(plain.choices[0]!.logprobs ?? undefined, undefined);
});

test("OpenAI: top_logprobs out of range is a 400 in OpenAI's error shape", async () => {
  const r = await fetch(`${daemon.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "story-chat", messages: [{ role: "user", content: PROMPT }], logprobs: true, top_logprobs: 25 }),
  });
  assert.equal(r.status, 400);
  const body = (await r.json()) as { error: { message: string; type: string } };
  assert.equal(body.error.message, "top_logprobs must be between 0 and 20");
  assert.equal(body.error.type, "invalid_request_error");
  await assert.rejects(
    openai.chat.completions.create({ model: "story-chat", messages: [{ role: "user", content: PROMPT }], logprobs: true, top_logprobs: -1 }),
    (e: unknown) => e instanceof OpenAI.APIError && e.status === 400 && e.message.includes("top_logprobs must be between 0 and 20"),
  );
  // The legacy completion's `logprobs` is the count: 25 is out of range there too.
  const legacy = await fetch(`${daemon.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "story", prompt: PROMPT, logprobs: 25 }) });
  assert.equal(legacy.status, 400);
  assert.equal(((await legacy.json()) as { error: { message: string } }).error.message, "top_logprobs must be between 0 and 20");
});
