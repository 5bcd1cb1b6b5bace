// The GGUF import paths of create beyond a single file: split sets, projectors, LoRA adapters,
// models built on other models, the chat template found in a GGUF, DRAFT/RENDERER/PARSER/REQUIRES,
// and a GGUF folder's JSON files.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, runCLI, type Daemon, uploadFile } from "../../../test/helpers/daemon.ts";
import { listFiles } from "../../../test/helpers/files.ts";
import { startProxy } from "../../../test/helpers/proxy.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { sha256Bytes, sha256File } from "@corral/shared/digest";
import { parseManifest, MediaType, type Manifest } from "@corral/shared/manifest";
import { readGGUFHeader, writeGGUF, writeSplitGGUF, GGUFValueType, type GGUFKV } from "@corral/shared/gguf/index";

let daemon: Daemon;
let work: string;

before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), "corral-gguf-"));
});

after(async () => {
  await daemon?.stop();
});

/** Rewrites a GGUF with extra or replaced metadata, keeping its tensors. */
async function rewriteGGUF(src: string, out: string, extra: GGUFKV[]): Promise<void> {
  const h = await readGGUFHeader(src);
  const keys = new Set(extra.map((e) => e.key));
  await writeGGUF(out, {
    kv: [...[...h.kv.values()].filter((e) => !keys.has(e.key)), ...extra],
    tensors: h.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, source: { path: src, offset: h.dataOffset + t.offset, size: t.size } })),
  });
}

/** A tiny GGUF with a single F32 tensor. */
async function smallGGUF(out: string, kv: GGUFKV[], tensorName: string): Promise<void> {
  await writeGGUF(out, { kv, tensors: [{ name: tensorName, dims: [4], type: 0, source: new Uint8Array(16) }] });
}

const str = (key: string, value: string): GGUFKV => ({ key, type: GGUFValueType.STRING, value });

async function readManifest(model: string): Promise<Manifest> {
  const [ns, rest] = model.includes("/") ? model.split("/") : ["library", model];
  const [name, tag] = rest!.split(":");
  return parseManifest(await readFile(join(daemon.modelsDir, "manifests", "registry.ollama.ai", ns!, name!, tag ?? "latest")));
}

const upload = (path: string): Promise<string> => uploadFile(daemon, path);

async function create(body: Record<string, unknown>): Promise<{ status: number; lines: Array<Record<string, string>> }> {
  const r = await fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, lines: text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, string>) };
}

test("a split GGUF set becomes one model layer equal to the unsplit file", async () => {
  const dir = join(work, "split");
  await mkdir(dir);
  const shards = await writeSplitGGUF(fixtures.stories260K, 3, join(dir, "stories"));
  assert.equal(shards.length, 3);
  await writeFile(join(work, "Modelfile.split"), "FROM ./split\n");
  const r = await runCLI(daemon, ["create", "story-split", "-f", join(work, "Modelfile.split")]);
  assert.equal(r.code, 0, r.stderr);
  const m = await readManifest("story-split");
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.model]);
  const merged = join(daemon.modelsDir, "blobs", m.layers[0]!.digest.replace(":", "-"));
  const h = await readGGUFHeader(merged);
  assert.ok(![...h.kv.keys()].some((k) => k.startsWith("split.")), "split keys are dropped");
  const original = await readGGUFHeader(fixtures.stories260K);
  assert.deepEqual(h.tensors.map((t) => [t.name, t.dims, t.type]), original.tensors.map((t) => [t.name, t.dims, t.type]));
  // The same metadata and tensors written by our writer give the same bytes: nothing was lost or reordered.
  const reference = join(work, "reference.gguf");
  await rewriteGGUF(fixtures.stories260K, reference, []);
  assert.equal(m.layers[0]!.digest, (await sha256File(reference)).digest);
});

test("an incomplete split set is refused and nothing is kept", async () => {
  const dir = join(work, "split-incomplete");
  await mkdir(dir);
  const shards = await writeSplitGGUF(fixtures.stories260K, 3, join(dir, "stories"));
  const before = await listFiles(daemon.modelsDir);
  const files: Record<string, string> = {};
  for (const s of [shards[0]!, shards[2]!]) files[s.split("/").pop()!] = await upload(s);
  const r = await create({ model: "broken-split", files, stream: false });
  assert.equal(r.status, 400);
  assert.match(r.lines[0]!["error"]!, /split GGUF .*missing shard 2|has 2 shards, expected 3/);
  assert.deepEqual(await listFiles(daemon.modelsDir), before);
});

test("a second FROM with a projector GGUF becomes a projector layer", async () => {
  const proj = join(work, "mmproj.gguf");
  await smallGGUF(proj, [str("general.architecture", "clip"), str("general.type", "projector")], "v.patch_embd.weight");
  await writeFile(join(work, "Modelfile.vision"), `FROM ${fixtures.stories260K}\nFROM ./mmproj.gguf\n`);
  const r = await runCLI(daemon, ["create", "story-vision", "-f", join(work, "Modelfile.vision")]);
  assert.equal(r.code, 0, r.stderr);
  const m = await readManifest("story-vision");
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.model, MediaType.projector]);
  const show = (await (await fetch(`${daemon.url}/api/show`, { method: "POST", body: JSON.stringify({ model: "story-vision" }) })).json()) as Record<string, unknown>;
  assert.ok((show["capabilities"] as string[]).includes("vision"));
  assert.equal((show["projector_info"] as Record<string, unknown>)["general.architecture"], "clip");
  assert.match(show["modelfile"] as string, /FROM .*\nFROM .*blobs\/sha256-/);
});

test("ADAPTER with a GGUF LoRA becomes an adapter layer; a non-adapter is refused", async () => {
  const lora = join(work, "lora.gguf");
  await smallGGUF(lora, [str("general.architecture", "llama"), str("general.type", "adapter"), str("adapter.type", "lora")], "blk.0.attn_q.weight.lora_a");
  await writeFile(join(work, "Modelfile.lora"), `FROM ${fixtures.stories260K}\nADAPTER ./lora.gguf\n`);
  const r = await runCLI(daemon, ["create", "story-lora", "-f", join(work, "Modelfile.lora")]);
  assert.equal(r.code, 0, r.stderr);
  const m = await readManifest("story-lora");
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.model, MediaType.adapter]);
  assert.equal(m.layers[1]!.digest, (await sha256File(lora)).digest);

  const before = await listFiles(daemon.modelsDir);
  await writeFile(join(work, "Modelfile.badlora"), `FROM ${fixtures.stories260K}\nADAPTER ${fixtures.tinyRandomLlama2}\n`);
  const bad = await runCLI(daemon, ["create", "story-badlora", "-f", join(work, "Modelfile.badlora")]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /not a LoRA adapter/);
  assert.deepEqual(await listFiles(daemon.modelsDir), before);
});

test("FROM an existing model inherits its layers and overrides system and parameters", async () => {
  await writeFile(join(work, "Modelfile.base"), `FROM ${fixtures.stories260K}\nSYSTEM base system\nPARAMETER temperature 0.7\nPARAMETER top_k 3\nLICENSE MIT\n`);
  assert.equal((await runCLI(daemon, ["create", "base", "-f", join(work, "Modelfile.base")])).code, 0);
  await writeFile(join(work, "Modelfile.derived"), `FROM base\nSYSTEM derived system\nPARAMETER temperature 0.1\nLICENSE Apache-2.0\n`);
  const r = await runCLI(daemon, ["create", "derived", "-f", join(work, "Modelfile.derived")]);
  assert.equal(r.code, 0, r.stderr);
  const base = await readManifest("base");
  const m = await readManifest("derived");
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.model, MediaType.license, MediaType.system, MediaType.license, MediaType.params]);
  assert.equal(m.layers[0]!.digest, base.layers[0]!.digest);
  assert.equal(m.layers[0]!.from, "base:latest");
  const blob = (d: string) => readFile(join(daemon.modelsDir, "blobs", d.replace(":", "-")), "utf8");
  assert.equal(await blob(m.layers[2]!.digest), "derived system");
  assert.equal(await blob(m.layers[4]!.digest), '{"temperature":0.1,"top_k":3}\n');
  const show = (await (await fetch(`${daemon.url}/api/show`, { method: "POST", body: JSON.stringify({ model: "derived" }) })).json()) as Record<string, unknown>;
  assert.equal(show["license"], "MIT\nApache-2.0");
  assert.equal((show["details"] as Record<string, unknown>)["parent_model"], "base:latest");

  const missing = await create({ model: "orphan", from: "no-such-model" });
  assert.equal(missing.status, 404);
  assert.match(missing.lines[0]!["error"]!, /no-such-model/);
});

test("a GGUF chat template is turned into a TEMPLATE and stop parameters", async () => {
  const chatml =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const withTemplate = join(work, "story-chatml.gguf");
  await rewriteGGUF(fixtures.stories260K, withTemplate, [str("tokenizer.chat_template", chatml)]);
  const digest = await upload(withTemplate);
  const r = await create({ model: "story-chat", files: { "story-chatml.gguf": digest } });
  assert.equal(r.status, 200);
  const statuses = r.lines.map((l) => l["status"]);
  assert.ok(statuses.includes("using autodetected template chatml"), statuses.join("\n"));
  const m = await readManifest("story-chat");
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.model, MediaType.template, MediaType.params]);
  const blob = (d: string) => readFile(join(daemon.modelsDir, "blobs", d.replace(":", "-")), "utf8");
  assert.match(await blob(m.layers[1]!.digest), /<\|im_start\|>/);
  assert.match(await blob(m.layers[2]!.digest), /"stop":\[.*\\u003c\|im_end\|\\u003e/);
});

/** A blob's bytes as text. */
const readBlob = (d: string): Promise<string> => readFile(join(daemon.modelsDir, "blobs", d.replace(":", "-")), "utf8");

/** POST /api/show's answer for a model. */
async function apiShow(model: string): Promise<Record<string, unknown>> {
  const r = await fetch(`${daemon.url}/api/show`, { method: "POST", body: JSON.stringify({ model }) });
  assert.equal(r.status, 200);
  return (await r.json()) as Record<string, unknown>;
}

test("DRAFT, RENDERER, PARSER and REQUIRES are stored and shown as Ollama shows them", async () => {
  await writeFile(
    join(work, "Modelfile.draft"),
    `FROM ${fixtures.stories260K}\nDRAFT ${fixtures.tinyRandomLlama2}\nTEMPLATE "{{ .Prompt }}"\nRENDERER qwen3-coder\nPARSER qwen3-coder\nREQUIRES 0.14.0\nPARAMETER num_predict 4\n`,
  );
  const r = await runCLI(daemon, ["create", "story-draft", "-f", join(work, "Modelfile.draft")]);
  assert.equal(r.code, 0, r.stderr);
  const m = await readManifest("story-draft");
  const draft = m.layers.find((l) => l.mediaType === MediaType.draft);
  assert.ok(draft, JSON.stringify(m.layers));
  assert.equal(draft.digest, await sha256File(fixtures.tinyRandomLlama2).then((d) => d.digest));
  // The config blob carries renderer, parser and requires, and describes the draft.
  const configText = await readBlob(m.config.digest);
  const config = JSON.parse(configText) as Record<string, unknown>;
  assert.equal(config["renderer"], "qwen3-coder");
  assert.equal(config["parser"], "qwen3-coder");
  assert.equal(config["requires"], "0.14.0");
  // In the place and field order Ollama's encoder gives it.
  assert.ok(configText.endsWith(`"requires":"0.14.0","draft":{"model_format":"gguf","architecture":"llama"},"architecture":"amd64","os":"linux"}\n`), configText);
  // /api/show: requires as a field; renderer, parser and the draft only in the Modelfile text.
  const show = await apiShow("story-draft");
  assert.equal(show["requires"], "0.14.0");
  assert.equal(show["renderer"], undefined);
  assert.equal(show["parser"], undefined);
  const modelfile = show["modelfile"] as string;
  assert.match(modelfile, new RegExp(`\nDRAFT .*blobs/sha256-${draft.digest.slice(7)}\n`));
  assert.match(modelfile, /\nRENDERER qwen3-coder\nPARSER qwen3-coder\n/);
  assert.doesNotMatch(modelfile, /REQUIRES/);
  // The model runs with its own template; the draft is kept, not used.
  const gen = await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story-draft", prompt: "Once upon a time", stream: false }) });
  assert.equal(gen.status, 200, await gen.clone().text());
  assert.equal(((await gen.json()) as { eval_count: number }).eval_count, 4);
  const cli = await runCLI(daemon, ["show", "story-draft"]);
  assert.match(cli.stdout, /requires\s+0\.14\.0/);
});

test("show --modelfile of a model with DRAFT, RENDERER and PARSER creates the same model again", async () => {
  const shown = await runCLI(daemon, ["show", "story-draft", "--modelfile"]);
  assert.equal(shown.code, 0, shown.stderr);
  await writeFile(join(work, "Modelfile.round"), shown.stdout);
  const r = await runCLI(daemon, ["create", "story-draft-again", "-f", join(work, "Modelfile.round")]);
  assert.equal(r.code, 0, r.stderr);
  const [a, b] = [await readManifest("story-draft"), await readManifest("story-draft-again")];
  assert.deepEqual(b.layers, a.layers);
  // As in Ollama, show --modelfile writes no REQUIRES, so only it is not carried over.
  const config = JSON.parse(await readBlob(b.config.digest)) as Record<string, unknown>;
  const { requires, ...rest } = JSON.parse(await readBlob(a.config.digest)) as Record<string, unknown>;
  assert.equal(requires, "0.14.0");
  assert.deepEqual(config, rest);
});

test("a model built FROM one with a draft keeps the draft layer and its config; a DRAFT that is not GGUF is refused", async () => {
  const digest = await upload(fixtures.stories260K);
  const r = await create({ model: "story-draft-child", from: "story-draft", system: "be brief", stream: false });
  assert.equal(r.status, 200, JSON.stringify(r.lines));
  const child = await readManifest("story-draft-child");
  const parent = await readManifest("story-draft");
  assert.deepEqual(child.layers.find((l) => l.mediaType === MediaType.draft)?.digest, parent.layers.find((l) => l.mediaType === MediaType.draft)?.digest);
  const config = JSON.parse(await readBlob(child.config.digest)) as Record<string, unknown>;
  assert.deepEqual(config["draft"], { model_format: "gguf", architecture: "llama" });
  assert.equal(config["renderer"], "qwen3-coder");
  // A DRAFT that is not a model is refused before anything is written.
  const bad = await create({ model: "story-bad-draft", files: { "model.gguf": digest }, draft_files: { "notes.gguf": await upload(join(work, "Modelfile.draft")) }, stream: false });
  assert.equal(bad.status, 400, JSON.stringify(bad.lines));
});

test("renderer and parser in /api/create are kept; a renderer with no template is refused when it matters", async () => {
  const digest = await upload(fixtures.stories260K);
  const r = await fetch(`${daemon.url}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model: "story-rendered", files: { "model.gguf": digest }, renderer: "qwen3-coder", parser: "qwen3-coder", stream: false }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  const config = JSON.parse(await readBlob((await readManifest("story-rendered")).config.digest)) as Record<string, unknown>;
  assert.equal(config["renderer"], "qwen3-coder");
  assert.equal(config["parser"], "qwen3-coder");
  assert.match((await apiShow("story-rendered"))["modelfile"] as string, /\nRENDERER qwen3-coder\nPARSER qwen3-coder\n/);
  const gen = await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story-rendered", prompt: "Once upon a time", stream: false }) });
  assert.equal(gen.status, 400);
  assert.match(((await gen.json()) as { error: string }).error, /built-in "qwen3-coder" renderer, which Corral does not have; create it again with a TEMPLATE/);
  const raw = await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story-rendered", prompt: "Once upon a time", raw: true, stream: false, options: { num_predict: 2 } }) });
  assert.equal(raw.status, 200, await raw.clone().text());
});

test("FROM a folder of GGUF weights sends its JSON files; the model is created and the JSON uploads are not kept", async () => {
  const dir = join(work, "gguf-folder");
  await mkdir(join(dir, "sub"), { recursive: true });
  await writeFile(join(dir, "model.gguf"), await readFile(fixtures.stories260K));
  const config = `{"architectures": ["LlamaForCausalLM"], "note": "${Date.now()}"}`;
  await writeFile(join(dir, "config.json"), config);
  const nested = `{"nested": "${Date.now()}"}`;
  await writeFile(join(dir, "sub", "config.json"), nested);
  await writeFile(join(dir, "Modelfile"), "FROM .\n");
  // The CLI talks to the daemon through a recording proxy, so the uploads it makes can be seen.
  const proxy = await startProxy(daemon.url);
  const r = await runCLI(daemon, ["create", "story-folder", "-f", join(dir, "Modelfile")], { env: { CORRAL_HOST: proxy.host } }).finally(() => proxy.stop());
  assert.equal(r.code, 0, r.stderr);
  const uploaded = proxy.log.filter((l) => l.method === "POST" && l.url.startsWith("/api/blobs/")).map((l) => l.url.slice("/api/blobs/".length));
  for (const json of [config, nested]) assert.ok(uploaded.includes(sha256Bytes(Buffer.from(json))), `${json} was not uploaded: ${uploaded.join(", ")}`);
  const m = await readManifest("story-folder");
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.model]);
  // The same request as Ollama's client makes it: the GGUF and its JSON files in one files map.
  const api = await fetch(`${daemon.url}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model: "story-folder-api", files: { "model.gguf": await upload(join(dir, "model.gguf")), "config.json": await upload(join(dir, "config.json")) }, stream: false }),
  });
  assert.equal(api.status, 200, await api.clone().text());
  assert.deepEqual((await readManifest("story-folder-api")).layers, m.layers);
  const blobs = await listFiles(join(daemon.modelsDir, "blobs"));
  for (const json of [config, nested]) assert.ok(!blobs.some((b) => b.endsWith(sha256Bytes(Buffer.from(json)).slice(7))), "the JSON uploads are removed");
});
