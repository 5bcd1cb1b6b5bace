// Images through the daemon's API, end to end with real processes and clients: a vision model made
// by `corral create` from two FROM lines (stories260K and a random-weight projector written here),
// asked about PNGs made here through the `ollama` and `openai` npm clients, then pushed to a
// registry, pulled by another daemon and run there. An image must become the projector's tokens
// and steer the greedy answer, the same way every time; bad images are a 400 of one line.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { startDaemon, runCLI, debugEvents, waitForDebugEvent, type Daemon, type DebugEvent } from "./helpers/daemon.ts";
import { startRegistry, registryCLI, type RegistryProcess } from "./helpers/registry.ts";
import { writeRandomProjector } from "./helpers/random-projector.ts";
import { encodePNG } from "./helpers/png.ts";
import { fixtures } from "./fixtures.ts";
import { buildVision } from "../apps/daemon/src/runner/vision/build-mtmd.mjs";

const red = encodePNG(48, 40, (x, y) => [200, (x * 5) % 256, (y * 3) % 256]);
const blue = encodePNG(48, 40, (x, y) => [(y * 6) % 256, 40, 220 - x]);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

let skip: string | false = false;
let work: string;
let tokensPerImage: number;
let daemon: Daemon;
let client: Ollama;

before(async () => {
  const built = await buildVision();
  // Without the tools the library cannot exist; any other failure is a failure.
  if (!built.ok && /is not installed|only on linux-x64/.test(built.reason)) skip = built.reason;
  else assert.ok(built.ok, built.ok ? "" : built.reason);
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), "corral-vision-api-"));
  tokensPerImage = await writeRandomProjector(join(work, "mmproj.gguf"), { textEmbd: 64 });
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(
    join(work, "Modelfile"),
    "FROM ./stories260K.gguf\nFROM ./mmproj.gguf\nTEMPLATE {{ .Prompt }}\nPARAMETER temperature 0\nPARAMETER num_predict 16\n",
  );
  // The debug log tells which worker process made each answer.
  daemon = await startDaemon({ env: { CORRAL_DEBUG: "1" } });
  const c = await runCLI(daemon, ["create", "seer", "-f", join(work, "Modelfile")]);
  assert.equal(c.code, 0, c.stderr);
  client = new Ollama({ host: daemon.url });
});

after(async () => {
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function post(path: string, body: unknown): Promise<{ status: number; error?: string }> {
  const r = await fetch(`${daemon.url}${path}`, { method: "POST", body: JSON.stringify(body) });
  const j = (await r.json()) as { error?: string | { message: string } };
  const error = typeof j.error === "object" ? j.error.message : j.error;
  return { status: r.status, ...(error !== undefined ? { error } : {}) };
}

test("/api/show lists vision for a model made from a model file and a projector", { skip }, async () => {
  const show = await client.show({ model: "seer" });
  assert.ok(show.capabilities.includes("vision"), JSON.stringify(show.capabilities));
  assert.ok(show.capabilities.includes("completion"));
});

test("/api/generate: an image becomes the projector's tokens and steers the greedy answer, the same way every time", { skip }, async () => {
  const plain = await client.generate({ model: "seer", prompt: "Once upon a time" });
  const withRed = await client.generate({ model: "seer", prompt: "Once upon a time", images: [red] });
  const again = await client.generate({ model: "seer", prompt: "Once upon a time", images: [b64(red)] });
  const withBlue = await client.generate({ model: "seer", prompt: "Once upon a time", images: [blue] });
  assert.equal(withRed.prompt_eval_count, plain.prompt_eval_count + tokensPerImage);
  assert.ok((withRed.response ?? "").length > 0);
  assert.equal(withRed.done_reason, "length");
  assert.equal(withRed.eval_count, 16);
  assert.equal(again.response, withRed.response, "same image, same greedy answer");
  assert.notEqual(withBlue.response, withRed.response, "another image, another answer");
  assert.notEqual(withRed.response, plain.response, "the image changes the answer");

  // Streamed, the pieces join into the same answer and the last chunk has the counts.
  let streamed = "";
  let last: { prompt_eval_count?: number; done?: boolean } = {};
  for await (const part of await client.generate({ model: "seer", prompt: "Once upon a time", images: [red], stream: true })) {
    streamed += part.response;
    last = part;
  }
  assert.equal(streamed, withRed.response);
  assert.equal(last.done, true);
  assert.equal(last.prompt_eval_count, withRed.prompt_eval_count);
});

test("/api/chat: a message's images are placed before its text, as in generate", { skip }, async () => {
  const gen = await client.generate({ model: "seer", prompt: "Once upon a time", images: [red] });
  const chat = await client.chat({ model: "seer", messages: [{ role: "user", content: "Once upon a time", images: [red] }] });
  assert.equal(chat.message.content, gen.response);
  assert.equal(chat.prompt_eval_count, gen.prompt_eval_count);
});

test("/v1/chat/completions takes a data: URL image part; a remote URL is refused as Ollama refuses it", { skip }, async () => {
  const openai = new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: "unused" });
  const r = await openai.chat.completions.create({
    model: "seer",
    // The OpenAI endpoints sample at temperature 1 unless told, as Ollama's do.
    temperature: 0,
    messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${b64(red)}` } }, { type: "text", text: "Once upon a time" }] }],
  });
  // Ollama keeps the parts as messages of their own: an image, then the text.
  const native = await client.chat({ model: "seer", messages: [{ role: "user", content: "", images: [red] }, { role: "user", content: "Once upon a time" }] });
  assert.ok(native.message.content.length > 0);
  assert.equal(r.choices[0]!.message.content, native.message.content);
  assert.equal(r.usage!.prompt_tokens, native.prompt_eval_count);
  const plain = await client.chat({ model: "seer", messages: [{ role: "user", content: "" }, { role: "user", content: "Once upon a time" }] });
  assert.equal(native.prompt_eval_count, plain.prompt_eval_count + tokensPerImage);
  await assert.rejects(
    openai.chat.completions.create({ model: "seer", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }] }),
    (e: unknown) => e instanceof OpenAI.APIError && e.status === 400 && /image URLs are not currently supported, please use base64 encoded data instead/.test(e.message),
  );
});

test("bad images are a 400 of one line naming the problem", { skip }, async () => {
  const oneLine = (r: { status: number; error?: string }, pattern: RegExp): void => {
    assert.equal(r.status, 400, r.error);
    assert.match(r.error ?? "", pattern);
    assert.ok(!r.error!.includes("\n"), r.error);
  };
  oneLine(await post("/api/generate", { model: "seer", prompt: "hi", images: ["not base64!"], stream: false }), /^images\[0\] is not valid base64/);
  oneLine(await post("/api/generate", { model: "seer", prompt: "hi", images: [b64(red.subarray(0, red.length >> 1))], stream: false }), /image 1 cannot be decoded/);
  oneLine(await post("/api/chat", { model: "seer", messages: [{ role: "user", content: "hi", images: [b64(Buffer.from("plain text"))] }], stream: false }), /image 1 is not a PNG, JPEG, GIF or BMP picture/);
  oneLine(await post("/api/generate", { model: "seer", prompt: "hi", images: Array.from({ length: 17 }, () => b64(red)), stream: false }), /17 images, more than the 16 allowed/);
  // The worker answers the next request.
  const ok = await client.generate({ model: "seer", prompt: "Once upon a time", images: [red] });
  assert.ok((ok.response ?? "").length > 0);
});

/**
 * The first `n` "generation with images ended" events of `model` once logged, and the workers
 * started for it; a second worker is enough to tell (an answer that ended with its worker killed
 * logs none).
 */
async function answersLogged(model: string, n: number): Promise<{ answers: DebugEvent[]; workers: DebugEvent[] }> {
  const of = (msg: string): DebugEvent[] => debugEvents(daemon).filter((e) => e.msg === msg && e["model"] === model);
  await waitForDebugEvent(daemon, 0, () => of("generation with images ended").length >= n || of("vision worker started").length > 1);
  return { answers: of("generation with images ended").slice(0, n), workers: of("vision worker started") };
}

test("a stop sequence or a client that leaves ends the answer between tokens and keeps the worker", { skip }, async () => {
  // A model of its own (a copy would share seer's runner), so that its worker and the log's
  // events are this test's alone.
  await writeFile(join(work, "Modelfile.lookout"), `${await readFile(join(work, "Modelfile"), "utf8")}PARAMETER top_k 1\n`);
  const c = await runCLI(daemon, ["create", "lookout", "-f", join(work, "Modelfile.lookout")]);
  assert.equal(c.code, 0, c.stderr);
  const model = "lookout";
  const full = (await client.generate({ model, prompt: "Once upon a time", images: [red] })).response ?? "";
  // A word from the middle of the greedy answer: the answer ends just before it.
  const stop = full.split(" ").filter(Boolean)[2]!;
  const cut = full.slice(0, full.indexOf(stop));
  assert.ok(cut.length > 0 && cut.length < full.length, JSON.stringify({ full, stop }));
  const stopped = await client.generate({ model, prompt: "Once upon a time", images: [red], options: { stop: [stop], num_predict: 400 } });
  assert.equal(stopped.response, cut);
  assert.equal(stopped.done_reason, "stop");
  const after = await client.generate({ model, prompt: "Once upon a time", images: [red] });
  assert.equal(after.response, full, "the kept worker answers as before");

  // A long streamed answer whose client leaves after the first chunk.
  const leaving = new AbortController();
  const r = await fetch(`${daemon.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model, prompt: "Once upon a time", images: [b64(red)], options: { num_predict: 100_000 } }),
    signal: leaving.signal,
  });
  assert.equal(r.status, 200);
  const first = await r.body!.getReader().read();
  assert.ok(first.value && first.value.length > 0);
  leaving.abort();
  const last = await client.generate({ model, prompt: "Once upon a time", images: [red] });
  assert.equal(last.response, full, "the kept worker answers as before");

  const { answers, workers } = await answersLogged(`${model}:latest`, 5);
  assert.equal(workers.length, 1, "one worker made every answer");
  const [fullEnd, stoppedEnd, afterEnd, leftEnd, lastEnd] = answers;
  // The worker may have ended the answer before the stop reached it; either way it was not killed.
  assert.notEqual(stoppedEnd!["stop_reason"], "killed", JSON.stringify(stoppedEnd));
  // Whether the client left before the answer's end depends on speed; either way the worker stays.
  assert.notEqual(leftEnd!["stop_reason"], "killed", JSON.stringify(leftEnd));
  assert.equal(afterEnd!["stop_reason"], "length");
  const pid = workers[0]!["pid"];
  assert.equal(typeof pid, "number");
  assert.equal(fullEnd!["worker_pid"], pid);
  for (const e of [stoppedEnd, afterEnd, leftEnd, lastEnd]) assert.equal(e!["worker_pid"], pid, "the same worker process made every answer");
});

test("a model without a projector given images says it does not support vision", { skip }, async () => {
  await writeFile(join(work, "Modelfile.text"), "FROM ./stories260K.gguf\n");
  const c = await runCLI(daemon, ["create", "story", "-f", join(work, "Modelfile.text")]);
  assert.equal(c.code, 0, c.stderr);
  const r = await post("/api/generate", { model: "story", prompt: "hi", images: [b64(red)], stream: false });
  assert.equal(r.status, 400);
  assert.match(r.error ?? "", /story:latest does not support vision/);
});

test("a vision model pushed to a registry and pulled elsewhere answers about images the same way", { skip }, async () => {
  const registry: RegistryProcess = await startRegistry();
  const other = await startDaemon();
  try {
    const key = (await readFile(join(daemon.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
    const keyB = (await readFile(join(other.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
    for (const args of [
      ["user", "add", "alice", "--key", key],
      ["user", "add", "bob", "--key", keyB],
      ["org", "create", "team", "--owner", "alice"],
      ["org", "add-member", "team", "bob", "--role", "reader"],
    ]) {
      const r = await registryCLI(registry, args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    }
    const name = `${registry.host}/team/seer`;
    assert.equal((await runCLI(daemon, ["cp", "seer", name])).code, 0);
    const push = await runCLI(daemon, ["push", name, "--insecure"]);
    assert.equal(push.code, 0, push.stderr);
    const pull = await runCLI(other, ["pull", name, "--insecure"]);
    assert.equal(pull.code, 0, pull.stderr);
    const here = await client.generate({ model: "seer", prompt: "Once upon a time", images: [blue] });
    const there = await new Ollama({ host: other.url }).generate({ model: name, prompt: "Once upon a time", images: [blue] });
    assert.equal(there.response, here.response);
    assert.equal(there.prompt_eval_count, here.prompt_eval_count);
  } finally {
    await other.stop();
    await registry.stop();
  }
});

test("corral run sends the image files a prompt names, one-shot and in a session", { skip }, async () => {
  await writeFile(join(work, "red.png"), red);
  await mkdir(join(work, "my pictures"), { recursive: true });
  await writeFile(join(work, "my pictures", "blue.png"), blue);
  const withRed = await client.generate({ model: "seer", prompt: "Once upon a time", images: [red] });
  const withBlue = await client.chat({ model: "seer", messages: [{ role: "user", content: "Once upon a time", images: [blue] }] });

  const once = await runCLI(daemon, ["run", "seer", "./red.png Once upon a time"], { cwd: work });
  assert.equal(once.code, 0, once.stderr);
  assert.equal(once.stdout, `${withRed.response}\n\n`);
  assert.match(once.stderr, /Added image '\.\/red\.png'/);

  // A path with an escaped space; a line that starts with a path is a message, not a command.
  const path = join(work, "my pictures", "blue.png").replaceAll(" ", "\\ ");
  const session = await runCLI(daemon, ["run", "seer", "--interactive"], { cwd: work, input: `${path} Once upon a time\n/bye\n` });
  assert.equal(session.code, 0, session.stderr);
  assert.ok(session.stdout.includes(withBlue.message.content), session.stdout);
  assert.ok(!session.stdout.includes("Unknown command"), session.stdout);
  assert.match(session.stderr, /Added image '.*my pictures\/blue\.png'/);

  // A path to no file stays in the prompt as text.
  const missing = await runCLI(daemon, ["run", "seer", "./nothing.png"], { cwd: work });
  assert.equal(missing.code, 0, missing.stderr);
  assert.doesNotMatch(missing.stderr, /Added image/);
});

test("/api/ps counts a vision model's projector in its size", { skip }, async () => {
  await writeFile(join(work, "Modelfile.plain"), "FROM ./stories260K.gguf\nTEMPLATE {{ .Prompt }}\n");
  const c = await runCLI(daemon, ["create", "plain", "-f", join(work, "Modelfile.plain")]);
  assert.equal(c.code, 0, c.stderr);
  // Both loaded with the same context, so their sizes differ by the projector alone.
  await client.generate({ model: "seer", prompt: "Once upon a time", options: { num_predict: 1 } });
  await client.generate({ model: "plain", prompt: "Once upon a time", options: { num_predict: 1 } });
  const { models } = await client.ps();
  const size = (name: string): number => models.find((m) => m.name === `${name}:latest`)!.size;
  assert.equal(size("seer") - size("plain"), (await stat(join(work, "mmproj.gguf"))).size);
});
