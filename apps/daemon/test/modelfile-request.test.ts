// How a Modelfile's PARAMETER lines become a create request's parameters, as Ollama reads them
// (each line on its own): a repeated list parameter gathers every value in order, a repeated
// single value is replaced by the later line, so an override appended to `show --modelfile`
// output takes effect. Also DRAFT, RENDERER, PARSER and REQUIRES, the files a model folder sends,
// and Git LFS pointers in place of weights.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { modelfileToRequest } from "../src/cli/modelfile-request.ts";
import { fixtures } from "../../../test/fixtures.ts";

// An empty folder of its own: in a shared temporary folder a file named like the model (`x`)
// would be taken for one.
const emptyDir = (): Promise<string> => mkdtemp(join(tmpdir(), "corral-mf-empty-"));

test("a repeated single-value PARAMETER keeps the last line; stop gathers every line", async () => {
  const text = ["FROM llama3.2", "PARAMETER temperature 0.2", "PARAMETER stop <|a|>", "PARAMETER num_ctx 2048", "PARAMETER temperature 0.9", "PARAMETER stop <|b|>", "PARAMETER num_ctx 8192", ""].join("\n");
  const req = await modelfileToRequest(undefined, text, await emptyDir());
  assert.deepEqual(req.parameters, { temperature: 0.9, stop: ["<|a|>", "<|b|>"], num_ctx: 8192 });
});

test("a bad value names its own line, also when an earlier line of the same parameter was good", async () => {
  const text = "FROM llama3.2\nPARAMETER temperature 0.2\nPARAMETER temperature hot\n";
  await assert.rejects(modelfileToRequest(undefined, text, await emptyDir()), /line 3\).*PARAMETER temperature: invalid float value \[hot\]/);
});

/** A folder with the story model's GGUF, for the FROM/DRAFT cases below. */
async function modelDir(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "corral-mf-"));
  for (const [name, data] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), data);
  }
  return dir;
}

test("RENDERER, PARSER and REQUIRES are taken as Ollama takes them; REQUIRES must be a semver", async () => {
  const text = "FROM llama3.2\nRENDERER qwen3-coder\nPARSER qwen3-coder\nREQUIRES v0.14.0\n";
  const req = await modelfileToRequest(undefined, text, await emptyDir());
  assert.equal(req.renderer, "qwen3-coder");
  assert.equal(req.parser, "qwen3-coder");
  assert.equal(req.requires, "0.14.0");
  assert.equal((await modelfileToRequest(undefined, "FROM x\nREQUIRES 0.14\n", await emptyDir())).requires, "0.14");
  for (const bad of ["0.14.0.1", "latest", "01.2.3", "1.2.3-01"]) {
    await assert.rejects(modelfileToRequest(undefined, `FROM x\nREQUIRES ${bad}\n`, await emptyDir()), /line 2\): requires must be a valid semver \(e\.g\. 0\.14\.0\)$/, bad);
  }
});

test("DRAFT names a second model's files; the FROM path itself is refused in either order", async () => {
  const dir = await modelDir({ "model.gguf": await readFile(fixtures.stories260K), "draft/draft.gguf": await readFile(fixtures.tinyRandomLlama2) });
  const req = await modelfileToRequest(undefined, "FROM ./model.gguf\nDRAFT ./draft\n", dir);
  assert.deepEqual(req.draftFiles, [join(dir, "draft", "draft.gguf")]);
  assert.deepEqual(req.files, [join(dir, "model.gguf")]);
  for (const text of ["FROM ./model.gguf\nDRAFT model.gguf\n", "DRAFT ./model.gguf\nFROM ./model.gguf\n"]) {
    await assert.rejects(modelfileToRequest(undefined, text, dir), /DRAFT must not reference the same local path as FROM: .*model\.gguf$/);
  }
});

test("FROM a folder of GGUF weights sends its JSON files too, as Ollama's client does", async () => {
  const dir = await modelDir({ "model.gguf": await readFile(fixtures.stories260K), "config.json": "{}", "tokenizer_config.json": "{}", "sub/extra.json": "{}", "notes.txt": "x" });
  const req = await modelfileToRequest(undefined, "FROM .\n", dir);
  assert.deepEqual(req.files.map((f) => relative(dir, f)).sort(), ["config.json", "model.gguf", join("sub", "extra.json"), "tokenizer_config.json"].sort());
});

test("a Git LFS pointer where the weights should be is refused with Ollama's message and what to do", async () => {
  const pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1750560\n";
  for (const name of ["model.gguf", "model.safetensors"]) {
    const dir = await modelDir({ [name]: pointer, "config.json": "{}" });
    await assert.rejects(
      modelfileToRequest(undefined, "FROM .\n", dir),
      (e: Error) => e.message.includes(`no Modelfile or safetensors files found in ${dir}`) && e.message.includes(`${name} is a Git LFS pointer`) && e.message.includes("git lfs pull"),
    );
  }
});
