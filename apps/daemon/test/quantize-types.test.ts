// Every quantization type, from an F16 and from an F32 model: created through the daemon with
// `quantize`, the new layer carries the requested general.file_type, `show` reports it, the model
// loads and generates, and quantizing the same source again gives the same bytes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "../../../test/helpers/daemon.ts";
import { writeRandomLlama } from "../../../bench/lib/random-llama.ts";
import { sha256Bytes, sha256File } from "@corral/shared/digest";
import { parseManifest, MediaType } from "@corral/shared/manifest";
import { readGGUFHeader, ggufNumber } from "@corral/shared/gguf/index";
import { QUANT_TYPE_NAMES, parseQuantType } from "../src/create/quantize/types.ts";
import { quantizeFile } from "../src/create/quantize/quantize.ts";

let daemon: Daemon;
let work: string;
const sources: Record<"F16" | "F32", { path: string; digest: string }> = {} as never;

// Every tensor row a multiple of 256, so the K-quants apply to every matrix without fallbacks.
const SHAPE = { embd: 256, layers: 1, ff: 512, heads: 4, kvHeads: 4 } as const;

async function post(path: string, body: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(`${daemon.url}${path}`, { method: "POST", body: JSON.stringify(body) });
  return { status: r.status, text: await r.text() };
}

async function modelLayer(model: string): Promise<{ digest: string; path: string }> {
  const m = parseManifest(await readFile(join(daemon.modelsDir, "manifests", "registry.ollama.ai", "library", model, "latest")));
  const layer = m.layers.find((l) => l.mediaType === MediaType.model)!;
  return { digest: layer.digest, path: join(daemon.modelsDir, "blobs", layer.digest.replace(":", "-")) };
}

before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), "corral-quant-types-"));
  for (const [name, type] of [["F16", 1], ["F32", 0]] as const) {
    const path = join(work, `random-${name}.gguf`);
    await writeRandomLlama(path, { ...SHAPE, type });
    const bytes = await readFile(path);
    const digest = sha256Bytes(bytes);
    assert.equal((await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "POST", body: bytes })).status, 201);
    const r = await post("/api/create", { model: `src-${name.toLowerCase()}`, files: { "model.gguf": digest }, stream: false });
    assert.equal(r.status, 200, r.text);
    sources[name] = { path, digest };
  }
});

after(async () => {
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

for (const source of ["F16", "F32"] as const) {
  test(`every type quantizes the ${source} model, loads, generates and is reproducible`, async () => {
    for (const name of QUANT_TYPE_NAMES) {
      const type = parseQuantType(name);
      const model = `q-${source.toLowerCase()}-${name.toLowerCase()}`;
      // The type as a user might type it: lower case.
      const r = await post("/api/create", { model, from: `src-${source.toLowerCase()}`, quantize: name.toLowerCase() });
      assert.equal(r.status, 200, `${model}: ${r.text}`);
      const lines = r.text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(lines.at(-1), { status: "success" }, `${model}: ${r.text}`);
      const layer = await modelLayer(model);

      if (name === source) {
        // Already the requested type: nothing is rewritten.
        assert.equal(layer.digest, sources[source].digest, model);
        assert.ok(!lines.some((l) => String(l["status"]).startsWith("quantizing")), model);
        continue;
      }
      assert.ok(lines.some((l) => l["status"] === `quantizing ${source} model to ${name}`), `${model}: ${r.text}`);
      assert.ok(lines.some((l) => l["status"] === `creating new layer ${layer.digest}`), `${model}: ${r.text}`);

      const h = await readGGUFHeader(layer.path);
      assert.equal(ggufNumber(h, "general.file_type"), type.ftype, `${model}: general.file_type`);
      const show = JSON.parse((await post("/api/show", { model })).text) as { details: { quantization_level: string } };
      // Ollama shows general.file_type 0 (all F32) as "unknown" (docs/daemon.md, "GGUF files").
      assert.equal(show.details.quantization_level, name === "F32" ? "unknown" : name, model);

      const g = await post("/api/generate", { model, prompt: "Once upon a time", raw: true, stream: false, options: { num_predict: 3, temperature: 0 } });
      assert.equal(g.status, 200, `${model}: ${g.text}`);
      const gen = JSON.parse(g.text) as { done: boolean; eval_count: number };
      assert.equal(gen.done, true, model);
      assert.ok(gen.eval_count >= 1, `${model}: ${g.text}`);

      // A second run of the quantizer on the same source gives the same file.
      const again = join(work, `${model}.gguf`);
      await quantizeFile(sources[source].path, again, type);
      assert.equal((await sha256File(again)).digest, layer.digest, `${model}: second run differs`);
      await rm(again);
    }
  });
}
