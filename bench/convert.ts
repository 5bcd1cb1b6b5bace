// Safetensors → GGUF conversion throughput and peak memory on a generated ≥1 GB llama checkpoint
// (BF16, F32 or F16 weights), against a plain disk copy of the same file in the same run.
//   npx tsx bench/convert.ts [--layers 8] [--runs 3] [--dtype BF16,F32,F16] [--no-save]
// The conversion runs in a child process so that its peak RSS is its own.
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { convertModel } from "../apps/daemon/src/create/convert/convert-model.ts";

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};

const CHUNK = 8 * 1024 * 1024;

/** The same read-then-write loop a converter must do, without converting: the I/O baseline. */
async function streamCopy(src: string, dst: string): Promise<void> {
  const input = await open(src, "r");
  const output = await open(dst, "w");
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ; ) {
      const { bytesRead } = await input.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      await output.write(buf, 0, bytesRead);
      pos += bytesRead;
    }
  } finally {
    await input.close();
    await output.close();
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

if (process.argv[2] === "--child") {
  // Child: convert and report time and peak RSS.
  const [dir, out] = [process.argv[3]!, process.argv[4]!];
  const files = new Map((await readdir(dir)).map((n) => [n, join(dir, n)]));
  const cpu = process.cpuUsage();
  const seconds = await timed(() => convertModel(files, out));
  const { user, system } = process.cpuUsage(cpu);
  process.stdout.write(JSON.stringify({ seconds, cpuSeconds: (user + system) / 1e6, maxRSS: process.resourceUsage().maxRSS * 1024 }) + "\n");
  process.exit(0);
}

const layers = Number(arg("layers", "8"));
const results: unknown[] = [];
async function bench(dtype: "BF16" | "F16" | "F32"): Promise<unknown> {
  const elem = dtype === "F32" ? 4 : 2;
  const hidden = 2048;
  const ff = 5632;
  const vocab = 32000;
  const heads = 16;

  const dir = await mkdtemp(join(tmpdir(), "corral-bench-convert-"));
  const model = join(dir, "model");
  try {
    await mkdir(model);
    const shapes: Array<[string, number[]]> = [["model.embed_tokens.weight", [vocab, hidden]]];
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}.`;
      shapes.push(
        [`${p}input_layernorm.weight`, [hidden]],
        [`${p}self_attn.q_proj.weight`, [hidden, hidden]],
        [`${p}self_attn.k_proj.weight`, [hidden, hidden]],
        [`${p}self_attn.v_proj.weight`, [hidden, hidden]],
        [`${p}self_attn.o_proj.weight`, [hidden, hidden]],
        [`${p}post_attention_layernorm.weight`, [hidden]],
        [`${p}mlp.gate_proj.weight`, [ff, hidden]],
        [`${p}mlp.up_proj.weight`, [ff, hidden]],
        [`${p}mlp.down_proj.weight`, [hidden, ff]],
      );
    }
    shapes.push(["model.norm.weight", [hidden]], ["lm_head.weight", [vocab, hidden]]);
    const header: Record<string, unknown> = {};
    let off = 0;
    let largest = 0;
    for (const [name, shape] of shapes) {
      const size = shape.reduce((a, b) => a * b, 1) * elem;
      header[name] = { dtype, shape, data_offsets: [off, off + size] };
      off += size;
      largest = Math.max(largest, size);
    }
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    // Weights of a plausible magnitude (|w| < 0.05), repeated from one random block.
    const block = Buffer.alloc(CHUNK);
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    for (let i = 0; i < CHUNK / elem; i++) {
      f32[0] = (Math.random() - 0.5) * 0.1;
      if (dtype === "F32") block.writeFloatLE(f32[0], i * 4);
      else if (dtype === "BF16") block.writeUInt16LE(u32[0]! >>> 16, i * 2);
      else block.writeUInt16LE(Math.round(0x2000 + Math.random() * 0x1000), i * 2);
    }
    const st = join(model, "model.safetensors");
    const fh = await open(st, "w");
    await fh.write(Buffer.concat([len, json]));
    for (let left = off; left > 0; left -= CHUNK) await fh.write(block, 0, Math.min(CHUNK, left));
    await fh.close();
    await writeFile(join(model, "config.json"), JSON.stringify({
      architectures: ["LlamaForCausalLM"], hidden_size: hidden, intermediate_size: ff, num_hidden_layers: layers,
      num_attention_heads: heads, num_key_value_heads: heads, vocab_size: vocab, max_position_embeddings: 4096,
      rms_norm_eps: 1e-5, rope_theta: 10000, bos_token_id: 1, eos_token_id: 2,
    }));
    await copyFile(fileURLToPath(new URL("../test/fixtures/convert/tiny-random-llama-2-hf/tokenizer.model", import.meta.url)), join(model, "tokenizer.model"));
    const sourceBytes = (await stat(st)).size;

    const copyOut = join(dir, "copy.bin");
    const ggufOut = join(dir, "out.gguf");
    const runs = Number(arg("runs", "3"));
    const copies: number[] = [];
    const copyCPU: number[] = [];
    const fsCopies: number[] = [];
    const converts: Array<{ seconds: number; cpuSeconds: number; maxRSS: number }> = [];
    for (let i = 0; i < runs; i++) {
      const cpu = process.cpuUsage();
      copies.push(await timed(() => streamCopy(st, copyOut)));
      const { user, system } = process.cpuUsage(cpu);
      copyCPU.push((user + system) / 1e6);
      await rm(copyOut);
      fsCopies.push(await timed(() => copyFile(st, copyOut)));
      await rm(copyOut);
      const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", model, ggufOut], { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      child.stdout.on("data", (d: Buffer) => (text += d.toString()));
      await new Promise((r) => child.on("close", r));
      converts.push(JSON.parse(text) as { seconds: number; cpuSeconds: number; maxRSS: number });
      await rm(ggufOut);
    }
    const best = (xs: number[]): number => Math.min(...xs);
    const median = (xs: number[]): number => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    };
    const mbps = (s: number): number => Number((sourceBytes / 1e6 / s).toFixed(1));
    const convertSeconds = best(converts.map((c) => c.seconds));
    const peak = Math.max(...converts.map((c) => c.maxRSS));
    const result = {
      model: `generated llama, ${layers} layers, hidden ${hidden}, ffn ${ff}, vocab ${vocab}, ${dtype} → F16, ${(sourceBytes / 1e9).toFixed(2)} GB safetensors`,
      runs,
      note: "best of the runs (medians: each run's conversion against the copy just before it); the source file is in the page cache for every measurement",
      streamCopyMBps: mbps(best(copies)),
      fsCopyFileMBps: mbps(best(fsCopies)),
      convertMBps: mbps(convertSeconds),
      ratioToStreamCopy: Number((best(copies) / convertSeconds).toFixed(3)),
      ratioToCopyFile: Number((best(fsCopies) / convertSeconds).toFixed(3)),
      convertMBpsMedian: mbps(median(converts.map((c) => c.seconds))),
      ratioToStreamCopyMedian: Number(median(converts.map((c, i) => copies[i]! / c.seconds)).toFixed(3)),
      // Processor time (user + system, all threads) is less disturbed by other work than wall time.
      streamCopyCPUSecondsMedian: Number(median(copyCPU).toFixed(2)),
      convertCPUSecondsMedian: Number(median(converts.map((c) => c.cpuSeconds)).toFixed(2)),
      largestTensorMB: Number((largest / 1e6).toFixed(1)),
      peakRSSMB: Number((peak / 1e6).toFixed(1)),
      peakRSSToLargestTensor: Number((peak / largest).toFixed(3)),
    };
    console.log(JSON.stringify(result, null, 2));
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const dtype of arg("dtype", "BF16,F32,F16").split(",") as Array<"BF16" | "F16" | "F32">) results.push(await bench(dtype));
if (!process.argv.includes("--no-save")) await writeFile(new URL("./results/convert.json", import.meta.url), JSON.stringify(results, null, 2) + "\n");
