// The official `ollama` npm client drives create, list, show, copy and delete against a real
// `corral serve`, the way existing tools talk to Ollama.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Ollama, type CreateRequest } from "ollama";
import { startDaemon, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { sha256Bytes } from "@corral/shared/digest";

let daemon: Daemon;
let ollama: Ollama;
let modelDigest: string;

before(async () => {
  daemon = await startDaemon();
  ollama = new Ollama({ host: daemon.url });
  const bytes = await readFile(fixtures.stories260K);
  modelDigest = sha256Bytes(bytes);
  const head = await fetch(`${daemon.url}/api/blobs/${modelDigest}`, { method: "HEAD" });
  assert.equal(head.status, 404);
  const up = await fetch(`${daemon.url}/api/blobs/${modelDigest}`, { method: "POST", body: bytes });
  assert.equal(up.status, 201);
  const again = await fetch(`${daemon.url}/api/blobs/${modelDigest}`, { method: "POST", body: bytes });
  assert.equal(again.status, 200);
});

after(async () => {
  await daemon?.stop();
});

// The npm client's type has no `files`, but it sends the body as given, as Ollama's own CLI does.
type WithFiles = CreateRequest & { files: Record<string, string> };

test("version", async () => {
  const v = await ollama.version();
  assert.match(v.version, /^\d+\.\d+\.\d+/);
});

test("create (streamed) from an uploaded GGUF", async () => {
  const stream = await ollama.create({
    model: "story",
    files: { "stories260K.gguf": modelDigest },
    system: "You tell stories.",
    parameters: { temperature: 0.5, num_ctx: 512 },
    stream: true,
  } as WithFiles & { stream: true });
  const statuses: string[] = [];
  for await (const p of stream) statuses.push(p.status);
  assert.deepEqual(statuses[0], "parsing GGUF");
  assert.ok(statuses.includes(`using existing layer ${modelDigest}`), statuses.join("\n"));
  assert.deepEqual(statuses.slice(-2), ["writing manifest", "success"]);
});

test("create (not streamed) from an existing model", async () => {
  const r = await ollama.create({ model: "alice/story:short", from: "story", system: "Be brief.", stream: false });
  assert.equal(r.status, "success");
});

test("list", async () => {
  const { models } = await ollama.list();
  const names = models.map((m) => m.name).sort();
  assert.deepEqual(names, ["alice/story:short", "story:latest"]);
  const story = models.find((m) => m.name === "story:latest")!;
  assert.equal(story.model, "story:latest");
  assert.equal(story.digest.length, 64);
  assert.equal(story.details.format, "gguf");
  assert.equal(story.details.family, "llama");
  assert.ok(story.size > 1_185_376);
  assert.ok(!Number.isNaN(new Date(story.modified_at).getTime()));
});

test("show", async () => {
  const s = await ollama.show({ model: "alice/story:short" });
  assert.equal(s.system, "Be brief.");
  assert.equal(s.details.parent_model, "story:latest");
  // The client types model_info as a Map, but on the wire it is a plain JSON object.
  const info = s.model_info as unknown as Record<string, unknown>;
  assert.equal(info["general.architecture"], "llama");
  assert.equal(info["llama.context_length"], 2048);
  assert.match(s.parameters, /temperature\s+0\.5/);
  assert.match(s.modelfile, /# FROM alice\/story:short/);
  const raw = (await (await fetch(`${daemon.url}/api/show`, { method: "POST", body: JSON.stringify({ model: "story" }) })).json()) as Record<string, unknown>;
  assert.ok(Array.isArray(raw["tensors"]) && (raw["tensors"] as unknown[]).length === 48);
  assert.deepEqual(raw["capabilities"], ["completion"]);
  await assert.rejects(ollama.show({ model: "nothere" }), /model 'nothere:latest' not found/);
});

test("copy and delete", async () => {
  await ollama.copy({ source: "story", destination: "story-copy" });
  const listed = (await ollama.list()).models.map((m) => m.name);
  assert.ok(listed.includes("story-copy:latest"));
  await ollama.delete({ model: "story-copy" });
  await ollama.delete({ model: "alice/story:short" });
  await assert.rejects(ollama.delete({ model: "story-copy" }), /not found/);
  assert.deepEqual((await ollama.list()).models.map((m) => m.name), ["story:latest"]);
});
