// `create --quantize` beyond the type matrix: parsing the type, the CLI's -q and `show`, the
// progress stream, refusing quantized sources, the library check, a llama.cpp abort that must not
// take the daemon down, and a cancelled request that must stop the quantizer and leave nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, runCLI, type Daemon } from "../../../test/helpers/daemon.ts";
import { listFiles } from "../../../test/helpers/files.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { writeRandomLlama } from "../../../bench/lib/random-llama.ts";
import { sha256Bytes } from "@corral/shared/digest";
import { parseManifest, MediaType } from "@corral/shared/manifest";
import { readGGUFHeader, writeGGUF, ggufNumber, GGUFWriteError, type GGUFKV } from "@corral/shared/gguf/index";
import { parseQuantType, sourceFloatType, QUANT_TYPE_NAMES, UNQUANTIZED_ONLY } from "../src/create/quantize/types.ts";
import { quantizeFile, QuantizeCancelledError, QUANTIZE_PROGRESS_DIGEST } from "../src/create/quantize/quantize.ts";
import { EXPECTED_DEFAULTS, EXPECTED_LLAMA_VERSION, defaultsProblem, versionProblem } from "../src/create/quantize/layout.mjs";
import { StatusError } from "../src/errors.ts";

let daemon: Daemon;
let work: string;
let smallF16: string;

before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), "corral-quant-"));
  smallF16 = join(work, "small-f16.gguf");
  await writeRandomLlama(smallF16, { embd: 256, layers: 1, ff: 512, heads: 4, kvHeads: 4, type: 1 });
});

after(async () => {
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function upload(path: string): Promise<string> {
  const bytes = await readFile(path);
  const digest = sha256Bytes(bytes);
  const r = await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "POST", body: bytes });
  assert.ok(r.status === 201 || r.status === 200);
  return digest;
}

async function post(path: string, body: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(`${daemon.url}${path}`, { method: "POST", body: JSON.stringify(body) });
  return { status: r.status, text: await r.text() };
}

const lines = (text: string): Array<Record<string, unknown>> => text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

async function modelLayerPath(model: string): Promise<string> {
  const m = parseManifest(await readFile(join(daemon.modelsDir, "manifests", "registry.ollama.ai", "library", model, "latest")));
  const layer = m.layers.find((l) => l.mediaType === MediaType.model)!;
  return join(daemon.modelsDir, "blobs", layer.digest.replace(":", "-"));
}

/** Rewrites a GGUF with some metadata replaced, keeping its tensors. */
async function rewrite(src: string, out: string, replace: Record<string, GGUFKV["value"]>): Promise<void> {
  const h = await readGGUFHeader(src);
  await writeGGUF(out, {
    kv: [...h.kv.values()].map((e) => (e.key in replace ? { ...e, value: replace[e.key]! } : e)),
    tensors: h.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, source: { path: src, offset: h.dataOffset + t.offset, size: t.size } })),
  });
}

/** The worker processes the daemon has running now. */
function quantizerChildren(): string[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(daemon.process.pid)], { encoding: "utf8" });
  } catch {
    return []; // ps exits 1 when nothing matches
  }
  // The quantizer's worker script: src/create/quantize/worker.mjs, or dist/worker.mjs when built.
  return out.split("\n").filter((l) => / \S*(quantize|dist)\/worker\.mjs/.test(l));
}

test("types parse case-insensitively with Ollama's aliases; unknown ones list the valid types", () => {
  assert.deepEqual(parseQuantType("q4_k_m"), { name: "Q4_K_M", ftype: 15 });
  assert.deepEqual(parseQuantType("Q4_K"), { name: "Q4_K_M", ftype: 15 });
  assert.deepEqual(parseQuantType("q5_k"), { name: "Q5_K_M", ftype: 17 });
  assert.deepEqual(parseQuantType("f16"), { name: "F16", ftype: 1 });
  assert.deepEqual(parseQuantType("bf16"), { name: "BF16", ftype: 32 });
  assert.equal(QUANT_TYPE_NAMES.length, 17);
  assert.throws(() => parseQuantType("q9_9"), (e: unknown) => {
    assert.ok(e instanceof StatusError && e.status === 400);
    assert.match(e.message, /^unsupported quantization type q9_9 - supported types are Q4_0, Q4_1, .*Q6_K, F16, BF16, F32/);
    for (const n of QUANT_TYPE_NAMES) assert.ok(e.message.includes(n), n);
    return true;
  });
});

test("the source must be F32, F16 or BF16", async () => {
  assert.equal(sourceFloatType(await readGGUFHeader(fixtures.stories260K)), "F32", "no general.file_type: judged by the tensors");
  assert.equal(sourceFloatType(await readGGUFHeader(fixtures.tinyRandomLlama2)), "F16");
  assert.equal(sourceFloatType(await readGGUFHeader(smallF16)), "F16");
  const q8 = join(work, "source-q8.gguf");
  await quantizeFile(smallF16, q8, parseQuantType("q8_0"));
  await readGGUFHeader(q8).then((h) => assert.throws(() => sourceFloatType(h), new RegExp(UNQUANTIZED_ONLY)));
  // A BF16 model is a source too.
  const bf16 = join(work, "source-bf16.gguf");
  await quantizeFile(smallF16, bf16, parseQuantType("bf16"));
  assert.equal(sourceFloatType(await readGGUFHeader(bf16)), "BF16");
  const fromBF16 = join(work, "from-bf16-q4_0.gguf");
  await quantizeFile(bf16, fromBF16, parseQuantType("q4_0"));
  assert.equal(ggufNumber(await readGGUFHeader(fromBF16), "general.file_type"), 2);
});

test("the library check names the version coded against and each default that differs", () => {
  assert.equal(versionProblem(EXPECTED_LLAMA_VERSION), undefined);
  const v = versionProblem("0.6.1-dev", "libllama.v0.6.1.so");
  assert.match(v!, /libllama\.v0\.6\.1\.so reports llama\.cpp version 0\.6\.1-dev, but the quantizer was written against llama\.cpp 0\.5\.0-dev \(node-llama-cpp 3\.22\.1\)/);
  const defaults = { ...EXPECTED_DEFAULTS, max_buf_size: 8589934592n };
  assert.equal(defaultsProblem(defaults, EXPECTED_LLAMA_VERSION), undefined, "a 64-bit field may come back as a bigint");
  const d = defaultsProblem({ ...defaults, ftype: 15, dry_run: undefined, tt_overrides: 4096 }, "0.5.0-dev");
  assert.match(d!, /ftype = 15 \(expected 7\), dry_run = undefined \(expected false\), tt_overrides = 4096 \(expected null\)/);
});

test("corral create -q quantizes, streams progress, and corral show reports the level", async () => {
  await writeFile(join(work, "Modelfile"), `FROM ./small-f16.gguf\n`);
  const r = await runCLI(daemon, ["create", "small-q4", "-q", "q4_K_M", "-f", join(work, "Modelfile")]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /quantizing F16 model to Q4_K_M/);
  const h = await readGGUFHeader(await modelLayerPath("small-q4"));
  assert.equal(ggufNumber(h, "general.file_type"), 15);
  const show = await runCLI(daemon, ["show", "small-q4"]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /quantization\s+Q4_K_M/);

  // The API stream (docs/daemon.md, "Create"): the quantize line with Ollama's zero digest, byte counts rising to the
  // layer's size, then the check and the new layer.
  const digest = await upload(smallF16);
  const size = (await readFile(smallF16)).length;
  const s = await post("/api/create", { model: "small-q8", files: { "model.gguf": digest }, quantization: "Q8_0" });
  assert.equal(s.status, 200, s.text);
  const ls = lines(s.text);
  const q = ls.filter((l) => l["status"] === "quantizing F16 model to Q8_0");
  assert.ok(q.length >= 3, s.text);
  for (const l of q) {
    assert.equal(l["digest"], QUANTIZE_PROGRESS_DIGEST);
    assert.equal(l["total"], size);
  }
  const done = q.map((l) => l["completed"] as number);
  assert.deepEqual(done, [...done].sort((a, b) => a - b), "completed never goes back");
  assert.equal(done[0], 0);
  assert.equal(done.at(-1), size);
  assert.ok(new Set(done).size >= 3, `intermediate progress: ${done.join(", ")}`);
  const statuses = ls.map((l) => l["status"] as string);
  const at = (st: string | RegExp): number => statuses.findIndex((x) => (typeof st === "string" ? x === st : st.test(x)));
  assert.ok(at("parsing GGUF") < at("quantizing F16 model to Q8_0"));
  assert.ok(at("quantizing F16 model to Q8_0") < at("verifying conversion"));
  assert.ok(at("verifying conversion") < at(/^creating new layer sha256:/));
  assert.deepEqual(ls.at(-1), { status: "success" });
  // The unquantized upload is not kept: no model refers to it.
  assert.ok(!(await readdir(join(daemon.modelsDir, "blobs"))).includes(digest.replace(":", "-")));
});

test("a quantized source is refused with Ollama's message; an unknown type is a 400 before anything is stored", async () => {
  const before = await listFiles(daemon.modelsDir);
  const bad = await post("/api/create", { model: "nope", from: "small-q4", quantize: "q4_0", stream: false });
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.text), { error: "quantization is only supported for F16, BF16 and F32 models" });
  const unknown = await post("/api/create", { model: "nope", from: "small-q4", quantize: "Q3_K_XL" });
  assert.equal(unknown.status, 400);
  assert.match((JSON.parse(unknown.text) as { error: string }).error, /^unsupported quantization type Q3_K_XL - supported types are Q4_0, /);
  assert.deepEqual(await listFiles(daemon.modelsDir), before);
});

test("llama.cpp aborting inside the quantizer fails the create, not the daemon", async () => {
  // block_count 0 passes create's parsing but trips a GGML_ASSERT in llama.cpp's model loader.
  const broken = join(work, "blocks0.gguf");
  await rewrite(fixtures.stories260K, broken, { "llama.block_count": 0 });
  const digest = await upload(broken);
  const before = await readdir(join(daemon.modelsDir, "blobs"));
  const r = await post("/api/create", { model: "blocks0", files: { "model.gguf": digest }, quantize: "q8_0", stream: false });
  assert.equal(r.status, 500, r.text);
  assert.match((JSON.parse(r.text) as { error: string }).error, /^quantizing to Q8_0 failed: llama\.cpp aborted: .*GGML_ASSERT/);
  assert.equal(daemon.process.exitCode, null, "the daemon is still running");
  assert.equal((await fetch(`${daemon.url}/api/tags`)).status, 200);
  const after = await readdir(join(daemon.modelsDir, "blobs"));
  assert.ok(!after.some((n) => n.startsWith(".tmp-")), `temporary files left: ${after.join(", ")}`);
  assert.ok(after.length <= before.length, "nothing new is kept");

  // The same failure straight from quantizeFile: a missing input is llama.cpp's own error.
  await assert.rejects(quantizeFile(join(work, "missing.gguf"), join(work, "out.gguf"), parseQuantType("q4_0")), /quantizing to Q4_0 failed: .*failed to open GGUF file/);
});

test("a cancelled create kills the quantizer and leaves no files behind", async () => {
  // Large enough that Q4_K_S runs for seconds on two cores.
  const big = join(work, "big-f16.gguf");
  await writeRandomLlama(big, { embd: 1024, layers: 4, ff: 2816, heads: 8, kvHeads: 8, type: 1 });
  const digest = await upload(big);
  const blobs = join(daemon.modelsDir, "blobs");
  const controller = new AbortController();
  const res = await fetch(`${daemon.url}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model: "big-q4", files: { "model.gguf": digest }, quantize: "q4_k_s" }),
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  let seen = "";
  while (!/"completed":[1-9]/.test(seen)) {
    const { value, done } = await reader.read();
    assert.ok(!done, `stream ended before quantizing got going: ${seen}`);
    seen += new TextDecoder().decode(value);
  }
  const busy = quantizerChildren().map((l) => l.trim().split(/\s+/)[0]);
  assert.equal(busy.length, 1, "the worker runs while quantizing");
  assert.ok((await readdir(blobs)).some((n) => n.startsWith(".tmp-")), "its output is a temporary file");
  controller.abort();

  // Until the busy worker is gone and its partial output removed (a fresh idle worker may already
  // be waiting for the next job): polled, as soon as the machine gets to it, with the test runner's
  // overall limit for a worker that is never killed or a file never removed.
  const running = (): string[] => quantizerChildren().map((l) => l.trim().split(/\s+/)[0]!).filter((pid) => busy.includes(pid));
  while (running().length > 0 || (await readdir(blobs)).some((n) => n.startsWith(".tmp-"))) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await assert.rejects(readFile(join(daemon.modelsDir, "manifests", "registry.ollama.ai", "library", "big-q4", "latest")), { code: "ENOENT" });
  assert.equal((await fetch(`${daemon.url}/api/tags`)).status, 200);

  // quantizeFile itself: an aborted signal rejects with QuantizeCancelledError.
  const ac = new AbortController();
  const job = quantizeFile(big, join(work, "cancelled.gguf"), parseQuantType("q4_k_s"), { signal: ac.signal, onTensor: () => ac.abort() });
  await assert.rejects(job, QuantizeCancelledError);
});

test("the GGUF writer checks what a producer yields against its declared size", async () => {
  const out = join(work, "producer.gguf");
  const produce = (n: number) => ({ size: 16, *chunks() { yield new Uint8Array(n); } });
  await assert.rejects(writeGGUF(out, { kv: [], tensors: [{ name: "t", dims: [4], type: 0, source: produce(12) }] }), GGUFWriteError);
  await assert.rejects(writeGGUF(out, { kv: [], tensors: [{ name: "t", dims: [4], type: 0, source: produce(20) }] }), GGUFWriteError);
  await writeGGUF(out, { kv: [], tensors: [{ name: "t", dims: [4], type: 0, source: produce(16) }] });
  assert.equal((await readGGUFHeader(out)).tensors[0]!.size, 16);
});
