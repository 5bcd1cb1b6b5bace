// A full disk, with real processes and small tmpfs mounts (root only; skipped with the reason
// elsewhere): the daemon's CORRAL_MODELS and the registry's filesystem blob storage each get 1 MiB,
// less than the 1.2 MB model. A pull, a create and a push that do not fit fail with "no space
// left on device" naming what was being written, and both stores stay consistent.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256File } from "@corral/shared/digest";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { registryCLI, type RegistryProcess } from "./helpers/registry.ts";
import { listFiles } from "./helpers/files.ts";
import { freePort } from "./helpers/ports.ts";
import { mountTmpfs, startRegistryAt } from "./helpers/faults.ts";
import { fixtures } from "./fixtures.ts";

const probe = mountTmpfs(1);
const skip = "skip" in probe ? probe.skip : false;
if ("dir" in probe) probe.unmount();

const mounts: Array<{ unmount(): void }> = [];
const dirs: string[] = [];
let registry: RegistryProcess;
let registryData: string;
let a: Daemon;
let work: string;
let modelHex: string;
/** Every blob of the pushed model (config and layers), as hex. */
let modelBlobs: string[];

function smallDisk(): string {
  const m = mountTmpfs(1);
  if ("skip" in m) throw new Error(m.skip);
  mounts.push(m);
  return m.dir;
}

before(async () => {
  if (skip) return;
  registryData = await mkdtemp(join(tmpdir(), "corral-registry-disk-"));
  registry = await startRegistryAt({ REGISTRY_ADDR: `127.0.0.1:${await freePort()}`, REGISTRY_DATA: registryData, REGISTRY_DEFAULT_VISIBILITY: "public" });
  a = await startDaemon();
  const key = (await readFile(join(a.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
  assert.equal((await registryCLI(registry, ["user", "add", "alice", "--key", key])).code, 0);
  work = await mkdtemp(join(tmpdir(), "corral-disk-"));
  await copyFile(fixtures.stories260K, join(work, "story.gguf"));
  await writeFile(join(work, "Modelfile"), "FROM ./story.gguf\nTEMPLATE {{ .Prompt }}\n");
  assert.equal((await runCLI(a, ["create", `${registry.host}/alice/story`, "-f", join(work, "Modelfile")])).code, 0);
  const push = await runCLI(a, ["push", `${registry.host}/alice/story`, "--insecure"]);
  assert.equal(push.code, 0, push.stderr);
  modelHex = (await sha256File(fixtures.stories260K)).digest.slice(7);
  const manifestFile = (await listFiles(a.modelsDir)).find((f) => f.startsWith("manifests/") && f.endsWith("/alice/story/latest"));
  assert.ok(manifestFile, "the pushed model's manifest");
  const manifest = JSON.parse(await readFile(join(a.modelsDir, manifestFile), "utf8")) as { config: { digest: string }; layers: Array<{ digest: string }> };
  modelBlobs = [manifest.config, ...manifest.layers].map((b) => b.digest.slice("sha256:".length));
});

after(async () => {
  await a?.stop();
  await registry?.stop();
  for (const m of mounts) m.unmount();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  if (registryData) await rm(registryData, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

/** No errors from fsck and nothing under a blob name that does not hash to it. */
async function assertStoreConsistent(d: Daemon): Promise<void> {
  const fsck = await runCLI(d, ["fsck"]);
  assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  assert.doesNotMatch(fsck.stdout, /invalid-manifest|missing-blob|corrupt-blob/);
  for (const f of await listFiles(d.modelsDir)) {
    const m = /^blobs\/sha256-([0-9a-f]{64})$/.exec(f);
    if (m) assert.equal((await sha256File(join(d.modelsDir, f))).digest, `sha256:${m[1]}`);
  }
}

test("a pull that does not fit says no space left on device, names the blob, and keeps the store consistent", { skip }, async () => {
  const d = await startDaemon({ env: { CORRAL_MODELS: smallDisk() } });
  try {
    const r = await runCLI(d, ["pull", `${registry.host}/alice/story`, "--insecure"]);
    assert.equal(r.code, 1);
    const err = r.stderr.split("\n").find((l) => l.startsWith("Error: ")) ?? r.stderr;
    assert.match(err, /no space left on device/, err);
    // The blobs download side by side: whichever write meets the full disk first is named.
    const named = /sha256[:-]([0-9a-f]{64})/.exec(err)?.[1];
    assert.ok(named && modelBlobs.includes(named), `the error names one of the model's blobs: ${err}`);
    const files = await listFiles(d.modelsDir);
    assert.ok(!files.some((f) => f.startsWith("manifests/")), "no manifest");
    assert.ok(!files.includes(`blobs/sha256-${modelHex}`), "no unverified blob");
    await assertStoreConsistent(d);
  } finally {
    await d.stop();
  }
});

test("a create that does not fit says no space left on device, names what it wrote, and leaves no temporary file", { skip }, async () => {
  const d = await startDaemon({ env: { CORRAL_MODELS: smallDisk() } });
  try {
    const r = await runCLI(d, ["create", "story", "-f", join(work, "Modelfile")]);
    assert.equal(r.code, 1);
    const err = r.stderr.split("\n").find((l) => l.startsWith("Error: ")) ?? r.stderr;
    assert.match(err, /no space left on device/, err);
    assert.match(err, new RegExp(`sha256[:-]${modelHex}|story\\.gguf`), `the error names what was written: ${err}`);
    const files = await listFiles(d.modelsDir);
    assert.deepEqual(files, [], "nothing was kept");
    await assertStoreConsistent(d);
  } finally {
    await d.stop();
  }
});

test("a push to a registry whose blob storage is full fails clearly, and the registry stays consistent", { skip }, async () => {
  const data = await mkdtemp(join(tmpdir(), "corral-registry-full-"));
  dirs.push(data);
  const storage = join(data, "storage");
  await mkdir(storage);
  const m = mountTmpfs(1);
  if ("skip" in m) throw new Error(m.skip);
  // The filesystem driver keeps its blobs under REGISTRY_DATA/storage: that is what fills up.
  const { execFileSync } = await import("node:child_process");
  execFileSync("mount", ["--bind", m.dir, storage]);
  mounts.push({ unmount: () => execFileSync("umount", ["-l", storage]) }, m);
  const full = await startRegistryAt({ REGISTRY_ADDR: `127.0.0.1:${await freePort()}`, REGISTRY_DATA: data });
  try {
    const key = (await readFile(join(a.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
    assert.equal((await registryCLI(full, ["user", "add", "alice", "--key", key])).code, 0);
    const name = `${full.host}/alice/story`;
    assert.equal((await runCLI(a, ["cp", `${registry.host}/alice/story`, name])).code, 0);
    const r = await runCLI(a, ["push", name, "--insecure"]);
    assert.equal(r.code, 1);
    const err = r.stderr.split("\n").find((l) => l.startsWith("Error: ")) ?? r.stderr;
    assert.match(err, /no space left on device while storing .*\/v2\/alice\/story\/blobs\/uploads/, `${err}\n${full.logs().slice(-3000)}`);
    assert.equal(full.process.exitCode, null, "the registry keeps running");
    assert.notEqual((await fetch(`${full.url}/v2/alice/story/manifests/latest`)).status, 200, "no manifest");
    const fsck = await registryCLI(full, ["fsck"]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    assert.doesNotMatch(fsck.stdout, /missing-blob|corrupt-blob|broken-manifest/);
  } finally {
    await full.stop();
    await runCLI(a, ["rm", `${full.host}/alice/story`]);
  }
});
