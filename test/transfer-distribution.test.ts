// push and pull against Debian's docker-registry (CNCF Distribution, no auth): two daemons with
// their own stores share a model through it; a pull killed mid-blob resumes without fetching the
// finished parts again; a blob whose bytes do not match its digest is refused and nothing is kept.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { startDockerRegistry, dockerRegistryBinary, type DockerRegistry } from "./helpers/docker-registry.ts";
import { startProxy } from "./helpers/proxy.ts";
import { listFiles } from "./helpers/files.ts";
import { fixtures } from "./fixtures.ts";
import { sha256File } from "@corral/shared/digest";

const available = dockerRegistryBinary() !== undefined;
let registry: DockerRegistry;
let a: Daemon;
let work: string;

before(async () => {
  if (!available) return;
  registry = await startDockerRegistry();
  a = await startDaemon();
  work = await mkdtemp(join(tmpdir(), "corral-push-"));
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(join(work, "Modelfile"), "FROM ./stories260K.gguf\nTEMPLATE {{ .Prompt }}\nPARAMETER temperature 0\nPARAMETER num_predict 24\n");
  const c = await runCLI(a, ["create", "story", "-f", join(work, "Modelfile")]);
  assert.equal(c.code, 0, c.stderr);
});

after(async () => {
  await a?.stop();
  await registry?.stop();
});

async function generate(d: Daemon, model: string): Promise<string> {
  const r = await fetch(`${d.url}/api/generate`, { method: "POST", body: JSON.stringify({ model, prompt: "Once upon a time", stream: false }) });
  return ((await r.json()) as { response: string }).response;
}

test("push to and pull from Distribution; the pulled model answers the same", { skip: !available && "docker-registry cannot be installed here" }, async () => {
  const name = `${registry.host}/team/story:v1`;
  assert.equal((await runCLI(a, ["cp", "story", name])).code, 0);
  const push = await runCLI(a, ["push", name, "--insecure"]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stdout, new RegExp(`You can find your model at:\\n\\n\\t${registry.host}/team/story:v1`));
  // Distribution keeps no publisher signatures: the push says so once and still succeeds.
  assert.equal(push.stderr.split("\n").filter((l) => l.includes("pushed unsigned")).length, 1, push.stderr);
  assert.match(push.stderr, new RegExp(`pushed unsigned: ${registry.host} does not keep model signatures`));
  // Pushing again finds every blob there already.
  assert.equal((await runCLI(a, ["push", name, "--insecure"])).code, 0);

  const b = await startDaemon();
  try {
    const pull = await runCLI(b, ["pull", name, "--insecure"]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stderr, /success/);
    // …and the pull, under the default CORRAL_VERIFY=warn, takes it with one warning.
    assert.equal(pull.stderr.split("\n").filter((l) => /warning: .* is not signed by its publisher/.test(l)).length, 1, pull.stderr);
    const list = await runCLI(b, ["list"]);
    assert.match(list.stdout, new RegExp(`${registry.host}/team/story:v1`));
    const manifest = await readFile(join(b.modelsDir, "manifests", registry.host, "team", "story", "v1"));
    const served = Buffer.from(await (await fetch(`${registry.url}/v2/team/story/manifests/v1`, { headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" } })).arrayBuffer());
    assert.deepEqual(manifest, served, "the manifest is stored as the registry sent it");
    for (const f of await readdir(join(b.modelsDir, "blobs"))) {
      assert.equal((await sha256File(join(b.modelsDir, "blobs", f))).digest, f.replace("-", ":"));
    }
    assert.equal(await generate(b, name), await generate(a, "story"));
    // Without --insecure the daemon speaks https and fails clearly.
    const secure = await runCLI(b, ["pull", name]);
    assert.equal(secure.code, 1);
  } finally {
    await b.stop();
  }
});

test("a pull killed mid-blob resumes without re-downloading finished parts", { skip: !available && "docker-registry cannot be installed here" }, async () => {
  const name = `${registry.host}/team/resume:latest`;
  assert.equal((await runCLI(a, ["cp", "story", name])).code, 0);
  assert.equal((await runCLI(a, ["push", name, "--insecure"])).code, 0);
  const proxy = await startProxy(registry.url, { delayPerChunkMs: 40, chunkBytes: 16384 });
  const home = await mkdtemp(join(tmpdir(), "corral-resume-"));
  const env = { CORRAL_TRANSFER_PART_MIN: "131072", CORRAL_TRANSFER_CONCURRENCY: "2" };
  const via = `${proxy.host}/team/resume:latest`;
  const modelDigest = (await sha256File(fixtures.stories260K)).digest;
  const partPrefix = `sha256-${modelDigest.slice(7)}-partial-`;
  let b = await startDaemon({ home, env });
  try {
    const pulling = runCLI(b, ["pull", via, "--insecure"]);
    // Wait until at least two parts are complete on disk, then kill the daemon outright.
    const blobs = join(b.modelsDir, "blobs");
    let done: Array<{ Offset: number; Size: number }> = [];
    while (done.length < 2) {
      await new Promise((r) => setTimeout(r, 25));
      const states = (await readdir(blobs).catch(() => [] as string[])).filter((f) => f.startsWith(partPrefix) && !f.endsWith(".tmp"));
      done = [];
      for (const f of states) {
        let s: { Offset: number; Size: number; Completed: number };
        try {
          s = JSON.parse(await readFile(join(blobs, f), "utf8"));
        } catch {
          continue; // replaced between readdir and read
        }
        if (s.Size > 0 && s.Completed === s.Size) done.push(s);
      }
    }
    b.process.kill("SIGKILL");
    await pulling;
    assert.ok(!(await readdir(blobs)).includes(`sha256-${modelDigest.slice(7)}`), "the unfinished blob is not visible");

    const before = proxy.log.length;
    proxy.options.delayPerChunkMs = 0;
    b = await startDaemon({ home, env });
    const again = await runCLI(b, ["pull", via, "--insecure"]);
    assert.equal(again.code, 0, again.stderr);
    const ranges = proxy.log.slice(before).filter((l) => l.range).map((l) => Number(/bytes=(\d+)-/.exec(l.range!)![1]));
    for (const p of done) assert.ok(!ranges.some((start) => start >= p.Offset && start < p.Offset + p.Size), `part at ${p.Offset} was fetched again`);
    assert.ok(ranges.length > 0, "the remaining parts were fetched");
    assert.equal((await sha256File(join(blobs, `sha256-${modelDigest.slice(7)}`))).digest, modelDigest);
    assert.deepEqual((await readdir(blobs)).filter((f) => f.includes("partial")), [], "no partial files remain");
  } finally {
    await b.stop();
    await proxy.stop();
  }
});

test("a blob whose bytes do not match its digest is refused and nothing is stored", { skip: !available && "docker-registry cannot be installed here" }, async () => {
  const name = `${registry.host}/team/corrupt:latest`;
  assert.equal((await runCLI(a, ["cp", "story", name])).code, 0);
  assert.equal((await runCLI(a, ["push", name, "--insecure"])).code, 0);
  const modelDigest = (await sha256File(fixtures.stories260K)).digest;
  const proxy = await startProxy(registry.url, { corruptDigest: modelDigest });
  const b = await startDaemon();
  try {
    const r = await runCLI(b, ["pull", `${proxy.host}/team/corrupt`, "--insecure"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /digest mismatch, file must be downloaded again: want sha256:270cba1b/);
    assert.deepEqual(await listFiles(b.modelsDir), [], "the store is as it was: empty");
  } finally {
    await b.stop();
    await proxy.stop();
  }
});
