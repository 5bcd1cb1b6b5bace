// CPU against GPU through the built daemon, on one model: tokens per second of prompt evaluation
// and of generation, and what `corral ps` shows, for CORRAL_GPU=cpu and for a GPU backend, side by
// side; the result goes to bench/results/gpu.json. Plain JavaScript run by the Node binary alone
// (bench/gpu.sh passes $NODE), so that a machine with a GPU and no network can run it on an
// installed tree; the only TypeScript, the random model's writer, goes through tsx from
// node_modules, and only when no GGUF is given.
//   bench/gpu.sh [--backend auto|cuda|vulkan] [--size-mb 1024] [--tokens 128] [--runs 5] [MODEL.gguf]

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const corral = join(root, "apps/daemon/bin/corral.js");

function parseArgs(argv) {
  const o = { backend: "auto", sizeMB: 1024, tokens: 128, runs: 5, model: undefined, out: join(root, "bench/results/gpu.json") };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    if (a === "--backend") o.backend = value();
    else if (a === "--size-mb") o.sizeMB = Number(value());
    else if (a === "--tokens") o.tokens = Number(value());
    else if (a === "--runs") o.runs = Number(value());
    else if (a === "--out") o.out = resolve(value());
    else if (a.startsWith("-")) fail(`unknown flag ${a}`);
    else o.model = resolve(a);
  }
  if (!["auto", "cuda", "vulkan"].includes(o.backend)) fail(`--backend ${o.backend}: expected auto, cuda or vulkan`);
  for (const k of ["sizeMB", "tokens", "runs"]) if (!(Number.isInteger(o[k]) && o[k] > 0)) fail(`--${k} must be a positive integer`);
  return o;
}

function fail(message) {
  process.stderr.write(`bench/gpu: ${message}\n`);
  process.exit(2);
}

// ---- cleanup: the daemons this starts and its temporary directory go, however it ends ----

const daemons = new Set();
let scratch;
function cleanup() {
  for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill("SIGKILL");
  daemons.clear();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}
process.on("exit", cleanup);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

// ---- the daemon and its API ----

function startDaemon(env) {
  const child = spawn(process.execPath, [corral, "serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  daemons.add(child);
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  const url = new Promise((resolveURL, reject) => {
    child.stderr.on("data", (d) => {
      log += d;
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) resolveURL(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`corral serve exited with ${code}:\n${log}`)));
  });
  return {
    url,
    logs: () => log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      daemons.delete(child);
    },
  };
}

async function api(url, path, body) {
  const r = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

async function sha256File(path) {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

async function createModel(url, modelPath, digest) {
  const r = await fetch(`${url}/api/blobs/${digest}`, { method: "POST", body: createReadStream(modelPath), duplex: "half" });
  if (r.status !== 201 && r.status !== 200) throw new Error(`uploading the model: ${r.status} ${await r.text()}`);
  await api(url, "/api/create", { model: "gpu-bench", files: { "model.gguf": digest }, template: "{{ .Prompt }}", stream: false });
}

const PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const perSecond = (count, ns) => (ns > 0 ? (count / ns) * 1e9 : 0);

async function measure(o, env, modelPath, digest) {
  const daemon = startDaemon(env);
  try {
    const url = await daemon.url;
    await createModel(url, modelPath, digest);
    const options = { temperature: 0, seed: 1, num_predict: o.tokens, num_ctx: 2048 };
    const started = performance.now();
    const first = await api(url, "/api/generate", { model: "gpu-bench", prompt: PROMPT, options, stream: false });
    const firstMs = performance.now() - started;
    const runs = [];
    for (let i = 0; i < o.runs; i++) {
      const r = await api(url, "/api/generate", { model: "gpu-bench", prompt: PROMPT, options, stream: false });
      runs.push(r);
    }
    const ps = spawnSync(process.execPath, [corral, "ps"], { env: { ...env, CORRAL_HOST: url.replace(/^http:\/\//, "") }, encoding: "utf8" });
    const psModels = (await (await fetch(`${url}/api/ps`)).json()).models;
    const lines = daemon.logs().split("\n").filter((l) => /^(running models on|models run on|CORRAL_GPU)/.test(l));
    return {
      gpuSetting: env.CORRAL_GPU,
      backendLog: lines,
      firstRequestMs: Math.round(firstMs),
      loadMs: Math.round(first.load_duration / 1e6),
      promptTokens: first.prompt_eval_count,
      generatedTokens: median(runs.map((r) => r.eval_count)),
      promptTokensPerSecond: Number(median(runs.map((r) => perSecond(r.prompt_eval_count, r.prompt_eval_duration))).toFixed(1)),
      generationTokensPerSecond: Number(median(runs.map((r) => perSecond(r.eval_count, r.eval_duration))).toFixed(1)),
      size: psModels[0]?.size,
      sizeVram: psModels[0]?.size_vram,
      ps: (ps.stdout || ps.stderr).trimEnd(),
    };
  } finally {
    await daemon.stop();
  }
}

function sideBySide(cpu, gpu, gpuLabel) {
  const rows = [
    ["", "CORRAL_GPU=cpu", `CORRAL_GPU=${gpuLabel}`],
    ["backend", cpu.backendLog.join(" ") || "-", gpu.backendLog.join(" ") || "-"],
    ["first request (ms, engine + load)", String(cpu.firstRequestMs), String(gpu.firstRequestMs)],
    ["load (ms)", String(cpu.loadMs), String(gpu.loadMs)],
    ["prompt eval (tokens/s)", `${cpu.promptTokensPerSecond} (${cpu.promptTokens} tokens)`, `${gpu.promptTokensPerSecond} (${gpu.promptTokens} tokens)`],
    ["generation (tokens/s)", `${cpu.generationTokensPerSecond} (${cpu.generatedTokens} tokens)`, `${gpu.generationTokensPerSecond} (${gpu.generatedTokens} tokens)`],
    ["size / size_vram (bytes)", `${cpu.size} / ${cpu.sizeVram}`, `${gpu.size} / ${gpu.sizeVram}`],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const table = rows.map((r) => `${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`).join("\n");
  return `${table}\n\ncorral ps, CORRAL_GPU=cpu:\n${cpu.ps}\n\ncorral ps, CORRAL_GPU=${gpuLabel}:\n${gpu.ps}\n`;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  scratch = mkdtempSync(join(tmpdir(), "corral-gpu-bench-"));
  let modelPath = o.model;
  let description;
  if (modelPath) {
    statSync(modelPath);
    description = modelPath;
  } else {
    modelPath = join(scratch, "random-llama.gguf");
    // The writer is TypeScript; tsx comes from the installed tree, nothing is fetched.
    const w = spawnSync(process.execPath, ["--import", "tsx", join(root, "bench/lib/write-random-llama.ts"), modelPath, String(o.sizeMB)], { cwd: root, encoding: "utf8" });
    if (w.status !== 0) throw new Error(`writing the random model failed (is tsx in node_modules? or pass a GGUF path):\n${w.stderr}`);
    description = `random llama F16, ${w.stdout.trim()} layers, embd 2048`;
  }
  const bytes = statSync(modelPath).size;
  const digest = await sha256File(modelPath);
  const env = (gpu, name) => ({
    ...process.env,
    HOME: join(scratch, name),
    CORRAL_HOME: join(scratch, name, ".corral"),
    CORRAL_MODELS: join(scratch, "models"),
    CORRAL_HOST: "127.0.0.1:0",
    CORRAL_GPU: gpu,
    OLLAMA_HOST: "",
    OLLAMA_MODELS: "",
  });
  const cpu = await measure(o, env("cpu", "cpu"), modelPath, digest);
  const gpu = await measure(o, env(o.backend, "gpu"), modelPath, digest);
  process.stdout.write(`model: ${description}, ${(bytes / 2 ** 20).toFixed(0)} MiB; ${o.tokens} tokens at temperature 0, median of ${o.runs} runs\n\n`);
  process.stdout.write(sideBySide(cpu, gpu, o.backend));
  const machine = { cpu: cpus()[0]?.model, cores: availableParallelism(), memoryBytes: totalmem() };
  const result = { model: description, bytes, tokens: o.tokens, runs: o.runs, node: process.version, machine, cpu, gpu };
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\nwritten to ${o.out}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench/gpu: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
