// Tokens per second and time to first token through `corral serve` against node-llama-cpp called
// directly, on the same model file with the same settings, in one run.
//   npx tsx bench/generate.ts [--tokens 128] [--runs 3]
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaCompletion, LlamaLogLevel } from "node-llama-cpp";
import { writeRandomLlama } from "./lib/random-llama.ts";
import { startDaemon } from "../test/helpers/daemon.ts";
import { sha256Bytes } from "@corral/shared/digest";
import { threadsFor } from "../apps/daemon/src/runner/llama.ts";

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const TOKENS = arg("tokens", 128);
const RUNS = arg("runs", 3);
const PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
const CTX = 4096;

interface Sample { ttftMs: number; tokensPerSecond: number; tokens: number }
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function direct(modelPath: string): Promise<Sample[]> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: CTX, threads: threadsFor(statSync(modelPath).size) });
  const seq = context.getSequence();
  const samples: Sample[] = [];
  for (let i = 0; i <= RUNS; i++) {
    await seq.clearHistory();
    const completion = new LlamaCompletion({ contextSequence: seq });
    const start = performance.now();
    let first = 0;
    let count = 0;
    await completion.generateCompletionWithMeta(model.tokenize(PROMPT, true), {
      maxTokens: TOKENS,
      temperature: 0,
      onToken: (t) => {
        if (count === 0) first = performance.now();
        count += t.length;
      },
    });
    const end = performance.now();
    if (i > 0) samples.push({ ttftMs: first - start, tokensPerSecond: ((count - 1) / (end - first)) * 1000, tokens: count });
  }
  await context.dispose();
  await model.dispose();
  return samples;
}

async function throughDaemon(modelPath: string): Promise<Sample[]> {
  const daemon = await startDaemon();
  try {
    const bytes = await readFile(modelPath);
    const digest = sha256Bytes(bytes);
    await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "POST", body: bytes });
    await fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify({ model: "bench", files: { "m.gguf": digest }, stream: false }) });
    await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "bench", prompt: "" }) });
    const samples: Sample[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const start = performance.now();
      const res = await fetch(`${daemon.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: "bench", prompt: PROMPT, raw: true, options: { temperature: 0, num_predict: TOKENS, num_ctx: CTX } }),
      });
      let first = 0;
      let count = 0;
      let buf = "";
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += Buffer.from(chunk).toString();
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = JSON.parse(buf.slice(0, nl)) as { done: boolean; eval_count?: number };
          buf = buf.slice(nl + 1);
          if (!line.done) {
            if (first === 0) first = performance.now();
          } else count = line.eval_count ?? 0;
        }
      }
      const end = performance.now();
      if (i > 0) samples.push({ ttftMs: first - start, tokensPerSecond: ((count - 1) / (end - first)) * 1000, tokens: count });
    }
    return samples;
  } finally {
    await daemon.stop();
  }
}

const dir = await mkdtemp(join(tmpdir(), "corral-bench-"));
try {
  const modelPath = join(dir, "random-llama-f16.gguf");
  await writeRandomLlama(modelPath, { embd: 512, layers: 8, ff: 1536, heads: 8, kvHeads: 8, type: 1 });
  const size = statSync(modelPath).size;
  const d = await direct(modelPath);
  const s = await throughDaemon(modelPath);
  const row = (name: string, xs: Sample[]) => ({
    name,
    tokensPerSecond: Number(median(xs.map((x) => x.tokensPerSecond)).toFixed(1)),
    ttftMs: Number(median(xs.map((x) => x.ttftMs)).toFixed(1)),
    tokens: median(xs.map((x) => x.tokens)),
  });
  const result = {
    model: `random llama, 8 layers, embd 512, F16, ${(size / 1e6).toFixed(1)} MB`,
    promptChars: PROMPT.length,
    runs: RUNS,
    direct: row("node-llama-cpp direct", d),
    corral: row("corral serve (HTTP, NDJSON)", s),
    ratio: 0,
  };
  result.ratio = Number((result.corral.tokensPerSecond / result.direct.tokensPerSecond).toFixed(3));
  console.log(JSON.stringify(result, null, 2));
  await writeFile(new URL("./results/generate.json", import.meta.url), JSON.stringify(result, null, 2) + "\n");
} finally {
  await rm(dir, { recursive: true, force: true });
}
