// The status and error text of every refused /api/generate, /api/chat, /api/embed and
// /api/embeddings body, and of the same refusals through the OpenAI endpoints: clients match on
// them. When a body has several faults, the one reported is fixed too (the model first, then the
// fields in the order listed here). Everything is refused before a model would be loaded.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import { fixtures } from "../../../test/fixtures.ts";
import { sha256Bytes } from "@corral/shared/digest";
import { createApp } from "../src/api/app.ts";
import { Scheduler } from "../src/runner/scheduler.ts";
import { Store } from "../src/store/store.ts";

let root = "";
let scheduler: Scheduler;
let app: Hono;

const post = (path: string, body: unknown): Promise<Response> =>
  Promise.resolve(app.request(`http://127.0.0.1${path}`, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) }));

before(async () => {
  root = await mkdtemp(join(tmpdir(), "corral-bad-bodies-"));
  const store = new Store(join(root, "models"));
  await store.init();
  scheduler = new Scheduler({ numParallel: 1, maxLoaded: 1, defaultKeepAliveMs: 0 });
  app = createApp({ store, scheduler, signer: async () => undefined, noPrune: true, loopbackOnly: false });
  const gguf = await readFile(fixtures.stories260K);
  const digest = sha256Bytes(gguf);
  assert.equal((await app.request(`/api/blobs/${digest}`, { method: "POST", body: gguf })).status, 201);
  const created = await post("/api/create", { model: "seed", files: { "model.gguf": digest }, stream: false });
  assert.equal(created.status, 200, await created.text());
});

after(async () => {
  await scheduler?.close();
  await rm(root, { recursive: true, force: true });
});

type Case = [body: unknown, status: number, error: string];

async function expectErrors(path: string, cases: Case[]): Promise<void> {
  for (const [body, status, error] of cases) {
    for (const stream of [undefined, false]) {
      const sent = typeof body === "object" && body !== null && !Array.isArray(body) && stream !== undefined ? { ...body, stream } : body;
      const r = await post(path, sent);
      const what = `${path} ${typeof sent === "string" ? sent : JSON.stringify(sent)}`;
      assert.equal(r.headers.get("content-type"), "application/json", what);
      assert.deepEqual({ status: r.status, body: await r.json() }, { status, body: { error } }, what);
    }
  }
}

const notJSON = ((): string => {
  try {
    JSON.parse("{bad");
  } catch (e) {
    return (e as Error).message;
  }
  return "";
})();

const keepAliveType = 'keep_alive must be a number of seconds or a duration string like "5m"';
const thinkType = 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)';
const listOfMessages = "messages must be a list of {role, content}";

test("/api/generate", async () => {
  await expectErrors("/api/generate", [
    ["", 400, "missing request body"],
    ["{bad", 400, notJSON],
    ["[1]", 400, "request body must be a JSON object"],
    [{}, 404, "model '' not found"],
    [{ model: 5, prompt: "x" }, 404, "model '' not found"],
    [{ model: "nothere", keep_alive: {}, think: 5 }, 404, "model 'nothere' not found"],
    [{ model: "Bad Name!" }, 400, "invalid model name"],
    [{ model: "seed", options: [] }, 400, "options must be an object"],
    [{ model: "seed", options: "x", raw: true, system: "s", keep_alive: {} }, 400, "options must be an object"],
    [{ model: "seed", raw: true, system: "s", keep_alive: {}, think: 5 }, 400, "raw mode does not support template, system, or context"],
    [{ model: "seed", raw: true, template: "{{ .Prompt }}" }, 400, "raw mode does not support template, system, or context"],
    [{ model: "seed", raw: true, context: [] }, 400, "raw mode does not support template, system, or context"],
    [{ name: "seed", prompt: "x", keep_alive: {} }, 400, keepAliveType],
    [{ model: "seed", prompt: "x", keep_alive: true, think: 5 }, 400, keepAliveType],
    [{ model: "seed", prompt: "x", keep_alive: "300" }, 400, 'time: missing unit in duration "300"'],
    [{ model: "seed", prompt: "x", keep_alive: "soon" }, 400, 'time: invalid duration "soon"'],
    [{ model: "seed", prompt: "x", think: 5 }, 400, thinkType],
    [{ model: "seed", prompt: "x", think: "huge" }, 400, 'invalid think value: "huge" (must be "high", "medium", "low", "max", true, or false)'],
    [{ model: "seed", prompt: "x", think: true }, 400, '"seed" does not support thinking'],
    [{ model: "seed", prompt: "x", think: "low" }, 400, '"seed" does not support thinking'],
    [{ model: "seed", prompt: "x", suffix: "y" }, 400, "registry.ollama.ai/library/seed:latest does not support insert"],
    [{ model: "seed", prompt: "x", images: ["aGVsbG8="] }, 400, "registry.ollama.ai/library/seed:latest does not support vision"],
  ]);
});

test("/api/chat", async () => {
  const user = [{ role: "user", content: "x" }];
  await expectErrors("/api/chat", [
    ["", 400, "missing request body"],
    [{}, 400, "model is required"],
    [{ messages: [] }, 400, "model is required"],
    [{ model: "nothere", messages: "x" }, 404, "model 'nothere' not found"],
    [{ model: "seed", options: 5, messages: "x" }, 400, "options must be an object"],
    [{ model: "seed", keep_alive: "x", messages: "x", think: 5 }, 400, 'time: invalid duration "x"'],
    [{ model: "seed", messages: "x", think: 5 }, 400, listOfMessages],
    [{ model: "seed", messages: { role: "user" } }, 400, listOfMessages],
    [{ model: "seed", messages: [null] }, 400, "messages[0].role must be a string"],
    [{ model: "seed", messages: [{ role: "user" }, { role: 1 }, 5] }, 400, "messages[1].role must be a string"],
    [{ model: "seed", messages: [{ role: "user" }, "user"] }, 400, "messages[1].role must be a string"],
    [{ model: "seed", messages: user, think: [] }, 400, thinkType],
    [{ model: "seed", messages: user, think: "" }, 400, 'invalid think value: "" (must be "high", "medium", "low", "max", true, or false)'],
    [{ model: "seed", messages: user, think: true }, 400, '"seed" does not support thinking'],
    [{ model: "seed", messages: user, tools: [{ type: "function", function: { name: "f" } }], think: true }, 400, "registry.ollama.ai/library/seed:latest does not support tools"],
    [{ model: "seed", messages: [{ role: "user", content: "x", images: ["aGVsbG8="] }] }, 400, "registry.ollama.ai/library/seed:latest does not support vision"],
  ]);
});

test("/api/embed and /api/embeddings", async () => {
  await expectErrors("/api/embed", [
    ["", 400, "missing request body"],
    [{}, 404, "model '' not found"],
    [{ model: "nothere", input: 5 }, 400, "invalid input type"],
    [{ model: "seed", input: ["a", 1] }, 400, "invalid input type"],
    [{ model: "seed", input: {} }, 400, "invalid input type"],
    [{ model: "nothere", input: "x" }, 404, "model 'nothere' not found"],
    [{ model: "seed", input: "x", options: [], keep_alive: {} }, 400, "options must be an object"],
    [{ model: "seed", input: "x", keep_alive: {} }, 400, keepAliveType],
  ]);
  await expectErrors("/api/embeddings", [
    ["", 400, "missing request body"],
    [{}, 400, "model is required"],
    [{ model: "nothere", prompt: "x" }, 404, "model 'nothere' not found"],
    [{ model: "seed", prompt: "x", options: 1, keep_alive: {} }, 400, "options must be an object"],
    [{ model: "seed", prompt: "x", keep_alive: "1" }, 400, 'time: missing unit in duration "1"'],
  ]);
});

test("the OpenAI endpoints pass the native refusals on in their own shape", async () => {
  const user = [{ role: "user", content: "x" }];
  const cases: Array<[path: string, body: unknown, status: number, message: string]> = [
    ["/v1/chat/completions", { model: "nothere", messages: user }, 404, "model 'nothere' not found"],
    ["/v1/chat/completions", { model: "nothere", messages: user, stream: true }, 404, "model 'nothere' not found"],
    ["/v1/chat/completions", { messages: user }, 400, "model is required"],
    ["/v1/chat/completions", { model: "seed", messages: user, reasoning_effort: "high", stream: true }, 400, '"seed" does not support thinking'],
    ["/v1/chat/completions", { model: "seed", messages: user, tools: [{ type: "function", function: { name: "f" } }] }, 400, "registry.ollama.ai/library/seed:latest does not support tools"],
    ["/v1/chat/completions", { model: "seed", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,aGVsbG8=" } }] }] }, 400, "registry.ollama.ai/library/seed:latest does not support vision"],
    ["/v1/completions", { model: "nothere", prompt: "x", stream: true }, 404, "model 'nothere' not found"],
    ["/v1/completions", { prompt: "x" }, 404, "model '' not found"],
    ["/v1/completions", { model: "seed", prompt: "x", suffix: "y" }, 400, "registry.ollama.ai/library/seed:latest does not support insert"],
    ["/v1/embeddings", { model: "nothere", input: "x" }, 404, "model 'nothere' not found"],
    ["/v1/embeddings", { model: "seed", input: [1] }, 400, "invalid input type"],
    ["/v1/embeddings", { input: "x" }, 404, "model '' not found"],
  ];
  for (const [path, body, status, message] of cases) {
    const r = await post(path, body);
    const what = `${path} ${JSON.stringify(body)}`;
    assert.equal(r.headers.get("content-type"), "application/json", what);
    const type = status === 404 ? "not_found_error" : "invalid_request_error";
    assert.deepEqual({ status: r.status, body: await r.json() }, { status, body: { error: { message, type, param: null, code: null } } }, what);
  }
  const models = await app.request("/v1/models/nothere");
  assert.equal(models.status, 404);
  const list = (await (await app.request("/v1/models")).json()) as { data: Array<{ id: string }> };
  assert.deepEqual(list.data.map((m) => m.id), ["seed:latest"]);
});

test("a JSON body past 128 MiB is refused with a 413, and read no further than the bound", async () => {
  const chunk = Buffer.alloc(1 << 20, 0x20);
  const tail = Buffer.from(JSON.stringify({ model: "seed", prompt: "hi", stream: false, options: { num_predict: 1 } }));
  for (const path of ["/api/generate", "/v1/completions"]) {
    // 200 MiB of whitespace before a valid body: without a bound all of it would be read and parsed.
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (pulled < 200) {
          pulled++;
          ctl.enqueue(chunk);
        } else {
          ctl.enqueue(tail);
          ctl.close();
        }
      },
    });
    const res = await app.request(`http://127.0.0.1${path}`, { method: "POST", body, duplex: "half" } as RequestInit);
    assert.equal(res.status, 413, path);
    assert.match(await res.text(), /request body is larger than 128 MiB/, path);
    assert.ok(pulled <= 130, `${path}: ${pulled} MiB read`);
  }
  const declared = await app.request("http://127.0.0.1/api/chat", { method: "POST", body: "{}", headers: { "Content-Length": String(200 << 20) } });
  assert.equal(declared.status, 413);
});
