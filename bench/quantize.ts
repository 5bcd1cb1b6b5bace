// Quantization: throughput (MB of F16 input per second) of corral's quantizer (llama.cpp's
// llama_model_quantize in a child process) on a generated ≥500 MB F16 llama, beside a natively
// built llama-quantize on the same file when one is given; the time of a whole `create` with
// `quantize` through the daemon; and the quality of every type on stories260K as the mean
// negative log-likelihood of a fixed story.
//
//   npx tsx bench/quantize.ts [--runs 5] [--llama-quantize PATH] [--keep-model]
//
// Without --llama-quantize, $LLAMA_QUANTIZE is used when set.
import { createReadStream, existsSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { writeRandomLlama } from "./lib/random-llama.ts";
import { meanNLL, STORY } from "./lib/nll.ts";
import { startDaemon } from "../test/helpers/daemon.ts";
import { fixtures } from "../test/fixtures.ts";
import { sha256File } from "@corral/shared/digest";
import { quantizeFile } from "../apps/daemon/src/create/quantize/quantize.ts";
import { parseQuantType, QUANT_TYPE_NAMES } from "../apps/daemon/src/create/quantize/types.ts";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const RUNS = Number(arg("runs") ?? 5);
const NATIVE = arg("llama-quantize") ?? process.env["LLAMA_QUANTIZE"];
const KEEP = process.argv.includes("--keep-model");
const THREADS = availableParallelism();
const SPEED_TYPES = ["Q4_0", "Q8_0", "Q4_K_M"] as const;
// 269M parameters: 16 layers, embd 1024, ff 4096, the shape of the notes' 538 MB model.
const SHAPE = { embd: 1024, layers: 16, ff: 4096, heads: 8, kvHeads: 8, type: 1 } as const;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

async function timed(fn: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

function runNative(input: string, output: string, type: string): void {
  const r = spawnSync(NATIVE!, [input, output, type, String(THREADS)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`llama-quantize ${type} failed (${r.status}): ${r.stderr.slice(-500)}`);
}

async function throughDaemon(modelPath: string): Promise<Record<string, unknown>> {
  const daemon = await startDaemon();
  try {
    const { digest } = await sha256File(modelPath);
    const up = await fetch(`${daemon.url}/api/blobs/${digest}`, {
      method: "POST",
      body: Readable.toWeb(createReadStream(modelPath)) as ReadableStream<Uint8Array>,
      duplex: "half",
    } as RequestInit);
    if (up.status !== 201 && up.status !== 200) throw new Error(`upload: ${up.status} ${await up.text()}`);
    const base = await fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify({ model: "bench-f16", files: { "m.gguf": digest }, stream: false }) });
    if (base.status !== 200) throw new Error(`create: ${await base.text()}`);
    const out: Record<string, { bestSeconds: number; medianSeconds: number; bestMBPerSecond: number; runs: number[] }> = {};
    const size = statSync(modelPath).size;
    for (const type of SPEED_TYPES) {
      const runs: number[] = [];
      for (let i = 0; i < Math.min(RUNS, 3); i++) {
        let body = "";
        // A new name each time: the same name would be replaced, pruning the previous blob.
        const seconds = await timed(async () => {
          const r = await fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify({ model: `bench-${type.toLowerCase()}-${i}`, from: "bench-f16", quantize: type, stream: false }) });
          body = await r.text();
        });
        if (!body.includes("success")) throw new Error(`create -q ${type}: ${body}`);
        runs.push(seconds);
      }
      out[type] = { bestSeconds: round(Math.min(...runs), 2), medianSeconds: round(median(runs), 2), bestMBPerSecond: round(size / 1e6 / Math.min(...runs)), runs: runs.map((r) => round(r, 2)) };
    }
    return out;
  } finally {
    await daemon.stop();
  }
}

const dir = await mkdtemp(join(tmpdir(), "corral-bench-quantize-"));
try {
  const modelPath = join(dir, "random-llama-f16.gguf");
  const genSeconds = await timed(() => writeRandomLlama(modelPath, SHAPE));
  const size = statSync(modelPath).size;
  console.error(`model: ${(size / 1e6).toFixed(1)} MB, written in ${genSeconds.toFixed(1)} s`);
  if (size < 500e6) throw new Error(`the bench model is ${size} bytes, expected at least 500 MB`);

  // This machine may be shared, so runs of the two quantizers alternate (both see the same
  // background load) and the fastest run is reported beside the median: noise only adds time.
  const stats = (runs: number[]) => ({
    bestSeconds: round(Math.min(...runs), 2),
    medianSeconds: round(median(runs), 2),
    bestMBPerSecond: round(size / 1e6 / Math.min(...runs)),
    medianMBPerSecond: round(size / 1e6 / median(runs)),
    runs: runs.map((r) => round(r, 2)),
  });
  const speed: Record<string, unknown> = {};
  for (const name of SPEED_TYPES) {
    const type = parseQuantType(name);
    const out = join(dir, `corral-${name}.gguf`);
    const nout = join(dir, `native-${name}.gguf`);
    const runs: number[] = [];
    const nruns: number[] = [];
    // One unmeasured round first, so both read the input from the page cache.
    for (let i = 0; i <= RUNS; i++) {
      const s = await timed(() => quantizeFile(modelPath, out, type, { threads: THREADS }));
      if (i > 0) runs.push(s);
      if (NATIVE) {
        const n = await timed(() => runNative(modelPath, nout, name));
        if (i > 0) nruns.push(n);
      }
    }
    const row: Record<string, unknown> = { outputMB: round(statSync(out).size / 1e6), corral: stats(runs) };
    if (NATIVE) {
      row["llamaQuantize"] = stats(nruns);
      row["ratioBest"] = round(Math.min(...nruns) / Math.min(...runs), 3);
      row["ratioMedian"] = round(median(nruns) / median(runs), 3);
      row["byteIdentical"] = (await sha256File(out)).digest === (await sha256File(nout)).digest;
      await rm(nout);
    }
    await rm(out);
    speed[name] = row;
    console.error(name, JSON.stringify(row));
  }

  const daemonCreate = await throughDaemon(modelPath);
  console.error("create through the daemon", JSON.stringify(daemonCreate));

  // Quality: stories260K (F32) to every type, NLL of the same story.
  const quality: Record<string, { nll: number; vsF32Percent: number }> = {};
  const f32 = await meanNLL(fixtures.stories260K, STORY);
  quality["F32"] = { nll: round(f32.nll, 4), vsF32Percent: 0 };
  for (const name of QUANT_TYPE_NAMES) {
    if (name === "F32") continue;
    const out = join(dir, `stories-${name}.gguf`);
    await quantizeFile(fixtures.stories260K, out, parseQuantType(name));
    const { nll } = await meanNLL(out, STORY);
    quality[name] = { nll: round(nll, 4), vsF32Percent: round(((nll - f32.nll) / f32.nll) * 100, 2) };
    await rm(out);
  }
  console.error("stories260K NLL", JSON.stringify(quality));

  const result = {
    machine: `${cpus()[0]?.model ?? "unknown CPU"}, ${THREADS} threads`,
    model: `random llama, ${SHAPE.layers} layers, embd ${SHAPE.embd}, ff ${SHAPE.ff}, F16, ${(size / 1e6).toFixed(1)} MB`,
    threads: THREADS,
    runs: RUNS,
    llamaQuantize: NATIVE ? "llama-quantize built from node-llama-cpp's bundled llama.cpp source (cmake Release, defaults)" : "not given",
    speed,
    createThroughDaemon: daemonCreate,
    quality: { model: "stories260K (F32)", tokensScored: f32.tokens, meanNLL: quality },
  };
  console.log(JSON.stringify(result, null, 2));
  await writeFile(new URL("./results/quantize.json", import.meta.url), JSON.stringify(result, null, 2) + "\n");
  if (KEEP && existsSync(modelPath)) console.error(`kept ${modelPath}`);
} finally {
  if (!KEEP) await rm(dir, { recursive: true, force: true });
}
