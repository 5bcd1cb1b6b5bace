// Importing Hugging Face checkpoints through a real daemon: `corral create` with FROM a
// safetensors directory (discovery, upload, conversion, template), greedy generation from the
// converted stories260K, the BF16 tiny-random-llama-2 against its transformers golden
// continuations, a PyTorch zip checkpoint written here against the safetensors import, a PEFT
// LoRA converted for its base, progress lines, and a failed conversion leaving the store as it was.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { Ollama } from "ollama";
import { startDaemon, runCLI, type Daemon, uploadFile } from "../../../test/helpers/daemon.ts";
import { listFiles } from "../../../test/helpers/files.ts";
import { fixturesDir } from "../../../test/fixtures.ts";
import { sha256Bytes } from "@corral/shared/digest";
import { parseManifest, MediaType, type Manifest } from "@corral/shared/manifest";
import { readGGUFHeader, ggufString } from "@corral/shared/gguf/index";
import { readSafetensors } from "../src/create/convert/safetensors.ts";
import { llamaEngine } from "../src/runner/llama.ts";
import { stateDictPickle } from "./support/torch-pickle.ts";

const CONVERT = join(fixturesDir, "convert");
const STORIES_HF = join(CONVERT, "stories260K-hf");
const TINY_HF = join(CONVERT, "tiny-random-llama-2-hf");

// The known greedy continuation of "Once upon a time" for stories260K (see generate.test.ts).
const GOLDEN =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do.';

let daemon: Daemon;
let ollama: Ollama;
let work: string;

before(async () => {
  daemon = await startDaemon();
  ollama = new Ollama({ host: daemon.url });
  work = await mkdtemp(join(tmpdir(), "corral-convert-daemon-"));
});

after(async () => {
  await daemon?.stop();
});

async function readManifest(model: string): Promise<Manifest> {
  return parseManifest(await readFile(join(daemon.modelsDir, "manifests", "registry.ollama.ai", "library", model, "latest")));
}

const blobPath = (digest: string): string => join(daemon.modelsDir, "blobs", digest.replace(":", "-"));

const upload = (path: string): Promise<string> => uploadFile(daemon, path);

async function create(body: Record<string, unknown>): Promise<{ status: number; lines: Array<Record<string, unknown>> }> {
  const r = await fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, lines: text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function uploadDir(dir: string, names: string[]): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const n of names) files[n] = await upload(join(dir, n));
  return files;
}

async function greedy(model: string, prompt: string, n: number): Promise<string> {
  const r = await ollama.generate({ model, prompt, raw: true, stream: false, options: { temperature: 0, num_predict: n } });
  return r.response ?? "";
}

/** A PyTorch zip checkpoint (torch.save layout, pickle protocol 2) of the given F32 tensors. */
function torchCheckpoint(tensors: Array<{ name: string; shape: number[]; data: Uint8Array }>): Buffer {
  const entries: Array<[string, Buffer]> = [["archive/data.pkl", stateDictPickle(tensors)], ["archive/byteorder", Buffer.from("little")]];
  tensors.forEach((t, i) => entries.push([`archive/data/${i}`, Buffer.from(t.data)]));
  entries.push(["archive/version", Buffer.from("3\n")]);

  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name);
    // Like torch, pad with an extra field so that data starts on a 64-byte boundary.
    const pad = (64 - ((offset + 30 + nameBuf.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x1234, 0);
    extra.writeUInt16LE(pad, 2);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(data.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(nameBuf.length, 28);
    c.writeUInt32LE(offset, 42);
    central.push(c, nameBuf);
    chunks.push(local, nameBuf, extra, data);
    offset += 30 + nameBuf.length + extra.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...chunks, cd, end]);
}

const STORIES_FILES = ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"];

test("corral create FROM a safetensors directory converts stories260K-hf, which generates the known story", async () => {
  const dir = join(work, "stories260K-hf");
  await cp(STORIES_HF, dir, { recursive: true });
  await writeFile(join(dir, "README.md"), "not a model file\n");
  await writeFile(join(work, "Modelfile.story"), "FROM ./stories260K-hf\n");
  const r = await runCLI(daemon, ["create", "story-hf", "-f", join(work, "Modelfile.story")]);
  assert.equal(r.code, 0, r.stderr);
  const m = await readManifest("story-hf");
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.model]);
  const h = await readGGUFHeader(blobPath(m.layers[0]!.digest));
  assert.equal(ggufString(h, "general.architecture"), "llama");
  assert.equal(h.tensors.length, 48);
  // The uploads were only inputs to the conversion; the store keeps the converted layer.
  const blobs = (await listFiles(daemon.modelsDir)).filter((f) => f.startsWith("blobs/"));
  assert.ok(!blobs.includes(`blobs/${sha256Bytes(await readFile(join(STORIES_HF, "model.safetensors"))).replace(":", "-")}`));

  const text = await greedy("story-hf", "Once upon a time", 60);
  assert.ok(text.length > 150 && GOLDEN.startsWith(text), `got ${JSON.stringify(text)}`);
});

test("the API streams converting-model progress and a PyTorch .bin imports to the same layer as its safetensors", async () => {
  const st = await create({ model: "story-st", files: await uploadDir(STORIES_HF, STORIES_FILES) });
  assert.equal(st.status, 200, JSON.stringify(st.lines));
  const statuses = st.lines.map((l) => l["status"]);
  const converting = st.lines.filter((l) => l["status"] === "converting model" && typeof l["total"] === "number");
  assert.ok(converting.length > 0, JSON.stringify(statuses));
  const last = converting[converting.length - 1]!;
  assert.equal(last["completed"], last["total"]);
  assert.match(String(last["digest"]), /^sha256:[0-9a-f]{64}$/);
  assert.equal(statuses[statuses.length - 1], "success");

  const { tensors } = await readSafetensors(join(STORIES_HF, "model.safetensors"), "model.safetensors");
  const raw = await readFile(join(STORIES_HF, "model.safetensors"));
  const bin = join(work, "pytorch_model.bin");
  await writeFile(bin, torchCheckpoint(tensors.map((t) => ({ name: t.name, shape: t.shape, data: raw.subarray(t.offset, t.offset + t.size) }))));
  const files = await uploadDir(STORIES_HF, STORIES_FILES.filter((n) => n !== "model.safetensors"));
  files["pytorch_model.bin"] = await upload(bin);
  const pt = await create({ model: "story-pt", files, stream: false });
  assert.equal(pt.status, 200, JSON.stringify(pt.lines));
  const a = await readManifest("story-st");
  const b = await readManifest("story-pt");
  assert.equal(b.layers[0]!.digest, a.layers[0]!.digest, "identical converted GGUF");
  assert.ok(GOLDEN.startsWith(await greedy("story-pt", "Once upon a time", 20)));
});

test("importing a Hugging Face folder with quantize keeps no intermediate F16 layer", async () => {
  // A context length of its own, so the converted F16 layer is new to the store (the other tests
  // import the same folder unchanged).
  const dir = await mkdtemp(join(tmpdir(), "corral-q8-"));
  await cp(STORIES_HF, dir, { recursive: true });
  const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, max_position_embeddings: 384 }));
  const before = new Set(await listFiles(join(daemon.modelsDir, "blobs")));
  const r = await create({ model: "story-q8", files: await uploadDir(dir, STORIES_FILES), quantize: "q8_0" });
  assert.equal(r.status, 200, JSON.stringify(r.lines));
  assert.ok(r.lines.some((l) => /^quantizing F(16|32) model to Q8_0$/.test(String(l["status"]))), JSON.stringify(r.lines));
  const m = await readManifest("story-q8");
  const named = new Set([m.config.digest, ...m.layers.map((l) => l.digest)].map((d) => d.replace(":", "-")));
  const added = (await listFiles(join(daemon.modelsDir, "blobs"))).filter((f) => !before.has(f));
  assert.deepEqual(added.filter((f) => !named.has(f.split("/").at(-1)!)), [], "every blob the import added is a layer of the model");
});

test("tiny-random-llama-2-hf (BF16) imports and its greedy continuations match the transformers golden file", async () => {
  const r = await create({ model: "tiny-hf", files: await uploadDir(TINY_HF, ["config.json", "model.safetensors", "tokenizer.model"]), stream: false });
  assert.equal(r.status, 200, JSON.stringify(r.lines));
  const m = await readManifest("tiny-hf");
  const golden = JSON.parse(await readFile(join(TINY_HF, "golden_logits_corpus.lunaflux.json"), "utf8")) as {
    model_cases: Array<{ input_ids: number[]; greedy_continuation: number[] }>;
  };
  const llama = await llamaEngine();
  const model = await llama.loadModel({ modelPath: blobPath(m.layers[0]!.digest), gpuLayers: 0 });
  try {
    for (const c of golden.model_cases) {
      const context = await model.createContext({ contextSize: 64, threads: 1 });
      try {
        const seq = context.getSequence();
        const out: number[] = [];
        for await (const t of seq.evaluate(c.input_ids as never[], { temperature: 0 })) {
          out.push(t as number);
          if (out.length === c.greedy_continuation.length) break;
        }
        assert.deepEqual(out, c.greedy_continuation, `continuation of ${JSON.stringify(c.input_ids)}`);
      } finally {
        await context.dispose();
      }
    }
  } finally {
    await model.dispose();
  }
});

/** A PEFT LoRA for stories260K's q and v projections, with the given lora_B scale. */
async function peftAdapter(dir: string, scaleB: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const rank = 2;
  const header: Record<string, unknown> = {};
  const datas: Buffer[] = [];
  let off = 0;
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 2;
  const add = (name: string, shape: number[], scale: number): void => {
    const v = Float32Array.from({ length: shape[0]! * shape[1]! }, () => rand() * scale);
    const b = Buffer.from(v.buffer);
    header[name] = { dtype: "F32", shape, data_offsets: [off, off + b.length] };
    datas.push(b);
    off += b.length;
  };
  for (let l = 0; l < 5; l++) {
    for (const [mod, out] of [["q_proj", 64], ["v_proj", 32]] as const) {
      const p = `base_model.model.model.layers.${l}.self_attn.${mod}`;
      add(`${p}.lora_A.weight`, [rank, 64], 0.5);
      add(`${p}.lora_B.weight`, [out, rank], scaleB);
    }
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  await writeFile(join(dir, "adapter_model.safetensors"), Buffer.concat([len, json, ...datas]));
  await writeFile(join(dir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", r: rank, lora_alpha: 4, target_modules: ["q_proj", "v_proj"] }));
}

test("ADAPTER with a PEFT safetensors LoRA is converted for its base and applied at run time", async () => {
  await peftAdapter(join(work, "peft-zero"), 0);
  await peftAdapter(join(work, "peft-strong"), 3);
  for (const [name, dir] of [["story-peft-zero", "peft-zero"], ["story-peft-strong", "peft-strong"]] as const) {
    await writeFile(join(work, `Modelfile.${name}`), `FROM story-hf\nADAPTER ./${dir}\n`);
    const r = await runCLI(daemon, ["create", name, "-f", join(work, `Modelfile.${name}`)]);
    assert.equal(r.code, 0, r.stderr);
    const m = await readManifest(name);
    assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.model, MediaType.adapter]);
    const h = await readGGUFHeader(blobPath(m.layers[1]!.digest));
    assert.equal(ggufString(h, "general.type"), "adapter");
    assert.deepEqual(h.tensors.find((t) => t.name === "blk.0.attn_v.weight.lora_b")?.dims, [2, 32]);
    assert.deepEqual(h.tensors.find((t) => t.name === "blk.0.attn_q.weight.lora_a")?.dims, [64, 2]);
  }
  // B = 0 leaves the model as it was; a strong adapter changes what it writes.
  assert.ok(GOLDEN.startsWith(await greedy("story-peft-zero", "Once upon a time", 30)));
  const changed = await greedy("story-peft-strong", "Once upon a time", 30);
  assert.ok(!GOLDEN.startsWith(changed), `the adapter has an effect: ${JSON.stringify(changed)}`);
});

test("a conversion that fails answers 400 naming the problem and leaves the store as it was", async () => {
  const before = await listFiles(daemon.modelsDir);
  const config = JSON.parse(await readFile(join(STORIES_HF, "config.json"), "utf8")) as Record<string, unknown>;
  const bad = join(work, "bad-config.json");
  await writeFile(bad, JSON.stringify({ ...config, architectures: ["FalconForCausalLM"] }));
  const files = await uploadDir(STORIES_HF, STORIES_FILES.filter((n) => n !== "config.json"));
  files["config.json"] = await upload(bad);
  const r = await create({ model: "story-bad", files, stream: false });
  assert.equal(r.status, 400);
  assert.match(String(r.lines[0]!["error"]), /unsupported architecture "FalconForCausalLM"; supported: LlamaForCausalLM/);
  assert.deepEqual(await listFiles(daemon.modelsDir), before);

  // A directory without weights is refused by the CLI before anything is uploaded.
  await mkdir(join(work, "empty"));
  await writeFile(join(work, "empty", "config.json"), "{}");
  await writeFile(join(work, "Modelfile.empty"), "FROM ./empty\n");
  const cli = await runCLI(daemon, ["create", "empty", "-f", join(work, "Modelfile.empty")]);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /no Modelfile or safetensors files found in .*empty/);
  assert.deepEqual(await listFiles(daemon.modelsDir), before);
});
