// Bad input to create: each case gives one clear message naming the file, line or value, a
// non-zero exit, and leaves the store exactly as it was.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, runCLI, type Daemon } from "../../../test/helpers/daemon.ts";
import { listFiles } from "../../../test/helpers/files.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { sha256Bytes } from "@corral/shared/digest";

let daemon: Daemon;
let work: string;
let baseline: string[];

before(async () => {
  daemon = await startDaemon();
  work = await mkdtemp(join(tmpdir(), "corral-bad-"));
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  const full = await readFile(fixtures.stories260K);
  await writeFile(join(work, "truncated.gguf"), full.subarray(0, 4000));
  await writeFile(join(work, "cut-data.gguf"), full.subarray(0, full.length - 1000));
  await writeFile(join(work, "notes.gguf"), "these are not the weights you are looking for\n");
  // One good model first, so "unchanged" is checked against a store that has content.
  await writeFile(join(work, "Modelfile.good"), "FROM ./stories260K.gguf\nSYSTEM hello\n");
  const ok = await runCLI(daemon, ["create", "good", "-f", join(work, "Modelfile.good")]);
  assert.equal(ok.code, 0, ok.stderr);
  baseline = await listFiles(daemon.modelsDir);
});

after(async () => {
  await daemon?.stop();
});

async function expectRefused(modelfile: string, pattern: RegExp, name = "broken"): Promise<string> {
  const path = join(work, `Modelfile.${Math.random().toString(36).slice(2)}`);
  await writeFile(path, modelfile);
  const r = await runCLI(daemon, ["create", name, "-f", path]);
  assert.equal(r.code, 1, `expected failure, got: ${r.stdout}${r.stderr}`);
  const errLine = r.stderr.split("\n").find((l) => l.startsWith("Error: ")) ?? "";
  assert.match(errLine, pattern);
  assert.deepEqual(await listFiles(daemon.modelsDir), baseline, "the store must be unchanged");
  return errLine;
}

test("a missing FROM file names the file and the line", async () => {
  await expectRefused("SYSTEM hi\nFROM ./missing.gguf\n", /line 2\).*FROM \.\/missing\.gguf: no such file/);
});

test("a file that is not GGUF is refused", async () => {
  await expectRefused("FROM ./notes.gguf\n", /notes\.gguf.*(GGUF|magic)/i);
});

test("a truncated GGUF is refused", async () => {
  await expectRefused("FROM ./truncated.gguf\n", /truncated\.gguf/);
  await expectRefused("FROM ./cut-data.gguf\n", /cut-data\.gguf/);
});

test("an unknown Modelfile command names its line", async () => {
  await expectRefused("FROM ./stories260K.gguf\nPARAMETER top_k 4\nFROOM x\n", /\(line 3\): command must be one of "from"/);
});

test("a bad PARAMETER value names the parameter and value", async () => {
  await expectRefused("FROM ./stories260K.gguf\n\nPARAMETER temperature hot\n", /line 3\).*PARAMETER temperature: invalid float value \[hot\]/);
  await expectRefused("FROM ./stories260K.gguf\nPARAMETER num_gqa 8\n", /unknown parameter 'num_gqa'/);
});

test("a DRAFT that is the FROM file itself is refused with Ollama's message, also through a link", async () => {
  const path = join(work, "stories260K.gguf");
  await expectRefused("FROM ./stories260K.gguf\nDRAFT ./stories260K.gguf\n", new RegExp(`\\(line 2\\): DRAFT must not reference the same local path as FROM: ${path.replace(/[.\\]/g, "\\$&")}$`));
  await symlink(path, join(work, "same.gguf"));
  await expectRefused("DRAFT ./same.gguf\nFROM ./stories260K.gguf\n", /\(line 2\): DRAFT must not reference the same local path as FROM: .*stories260K\.gguf$/);
});

test("a REQUIRES that is not a version is refused with Ollama's message", async () => {
  await expectRefused("FROM ./stories260K.gguf\nREQUIRES latest\n", /\(line 2\): requires must be a valid semver \(e\.g\. 0\.14\.0\)$/);
});

test("a folder whose weights are Git LFS pointers is refused: Ollama's message, the pointer named, git lfs pull", async () => {
  const dir = join(work, "lfs-clone");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "model.gguf"), "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1750560\n");
  await writeFile(join(dir, "config.json"), "{}");
  await expectRefused("FROM ./lfs-clone\n", /no Modelfile or safetensors files found in .*lfs-clone \(model\.gguf is a Git LFS pointer, not weights: run `git lfs pull` in .*lfs-clone\)$/);
});

test("a missing FROM line is refused", async () => {
  await expectRefused("SYSTEM hi\n", /no FROM line/);
});

test("an invalid model name is refused before anything is read", async () => {
  await expectRefused("FROM ./stories260K.gguf\n", /invalid model name "bad\/name\/with\/too\/many"/, "bad/name/with/too/many");
  await expectRefused("FROM ./stories260K.gguf\n", /invalid model name "ns\/mo:del:x"/, "ns/mo:del:x");
});

test("the API refuses a truncated upload and keeps nothing", async () => {
  const bytes = (await readFile(fixtures.stories260K)).subarray(0, 5000);
  const digest = sha256Bytes(bytes);
  const up = await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "POST", body: bytes });
  assert.equal(up.status, 201);
  // Streamed, the error arrives as the last line after "parsing GGUF", as Ollama sends it.
  const streamed = await fetch(`${daemon.url}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model: "cut", files: { "cut.gguf": digest } }),
  });
  const lines = (await streamed.text()).trim().split("\n").map((l) => JSON.parse(l) as Record<string, string>);
  assert.equal(lines[0]!["status"], "parsing GGUF");
  assert.match(lines.at(-1)!["error"]!, /^cut\.gguf: /);
  assert.deepEqual(await listFiles(daemon.modelsDir), baseline);
  // Not streamed, it is an ordinary 400.
  await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "POST", body: bytes });
  const res = await fetch(`${daemon.url}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model: "cut", files: { "cut.gguf": digest }, stream: false }),
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: string };
  assert.match(body.error, /^cut\.gguf: /);
  assert.deepEqual(await listFiles(daemon.modelsDir), baseline);
});

test("a blob whose bytes do not match its digest is not kept", async () => {
  const digest = sha256Bytes("something else");
  const res = await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "POST", body: "these bytes" });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: string }).error, /digest mismatch/);
  for (const d of ["sha256:abc", "sha256:..%2F..%2Fetc%2Fpasswd", "md5:" + "0".repeat(32)]) {
    const bad = await fetch(`${daemon.url}/api/blobs/${d}`, { method: "POST", body: "x" });
    assert.equal(bad.status, 400, d);
    assert.equal(((await bad.json()) as { error: string }).error, "invalid digest format");
  }
  assert.deepEqual(await listFiles(daemon.modelsDir), baseline);
});

test("API create errors carry Ollama's status codes", async () => {
  const post = (body: unknown) => fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify(body) });
  let r = await post({ model: "x" });
  assert.equal(r.status, 400);
  assert.equal(((await r.json()) as { error: string }).error, "neither 'from' or 'files' was specified");
  r = await post({ model: "x", files: { "../a.gguf": sha256Bytes("a") } });
  assert.equal(((await r.json()) as { error: string }).error, "file path must be relative");
  r = await post({ model: "x", files: { "a.gguf": "" } });
  assert.equal(((await r.json()) as { error: string }).error, "invalid digest format");
  r = await post({ model: "a/b/c/d", from: "good" });
  assert.equal(((await r.json()) as { error: string }).error, "invalid model name");
  r = await post({ model: "x", from: "good", template: "{{ .Prompt" });
  assert.equal(r.status, 400);
  assert.match(((await r.json()) as { error: string }).error, /^template error: /);
  r = await fetch(`${daemon.url}/api/create`, { method: "POST", body: "" });
  assert.equal(((await r.json()) as { error: string }).error, "missing request body");
  assert.deepEqual(await listFiles(daemon.modelsDir), baseline);
});
