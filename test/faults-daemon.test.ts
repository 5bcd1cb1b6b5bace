// The daemon SIGKILLed mid-pull and mid-create, with real processes. Afterwards the store holds no
// blob under its final name that was not verified, no manifest for the interrupted model, and
// `corral fsck` sees only leftovers (partial downloads, temporary files, unused blobs), which
// `--repair` removes; the next pull resumes and the next create succeeds.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256File } from "@corral/shared/digest";
import { writeSplitGGUF } from "@corral/shared/gguf/index";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { startDockerRegistry, dockerRegistryBinary, type DockerRegistry } from "./helpers/docker-registry.ts";
import { startProxy } from "./helpers/proxy.ts";
import { listFiles } from "./helpers/files.ts";
import { exited, waitFor, writeLargeGGUF } from "./helpers/faults.ts";
import { fixtures } from "./fixtures.ts";

let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "corral-faults-daemon-"));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Every file named like a blob hashes to its name: nothing unverified is visible. */
async function assertBlobsVerified(modelsDir: string): Promise<string[]> {
  const names = (await readdir(join(modelsDir, "blobs")).catch(() => [] as string[])).filter((n) => /^sha256-[0-9a-f]{64}$/.test(n));
  for (const n of names) assert.equal((await sha256File(join(modelsDir, "blobs", n))).digest, n.replace("-", ":"), `${n} holds other bytes`);
  return names;
}

function fsckKinds(stdout: string): string[] {
  return [...new Set(stdout.split("\n").map((l) => /^([a-z-]+): /.exec(l)?.[1]).filter((k): k is string => k !== undefined))].sort();
}

const available = dockerRegistryBinary() !== undefined;

test("killed mid-pull: no unverified blob, no manifest; fsck sees only the resumable download", { skip: !available && "docker-registry cannot be installed here" }, async () => {
  const registry: DockerRegistry = await startDockerRegistry();
  const a = await startDaemon();
  const home = await mkdtemp(join(tmpdir(), "corral-faults-pull-"));
  const env = { CORRAL_TRANSFER_PART_MIN: "131072", CORRAL_TRANSFER_CONCURRENCY: "2" };
  const proxy = await startProxy(registry.url, { delayPerChunkMs: 40, chunkBytes: 16384 });
  let b: Daemon | undefined;
  try {
    await copyFile(fixtures.stories260K, join(work, "story.gguf"));
    await writeFile(join(work, "Modelfile"), "FROM ./story.gguf\nTEMPLATE {{ .Prompt }}\n");
    const name = `${registry.host}/team/story:latest`;
    assert.equal((await runCLI(a, ["create", name, "-f", join(work, "Modelfile")])).code, 0);
    assert.equal((await runCLI(a, ["push", name, "--insecure"])).code, 0);
    const modelHex = (await sha256File(fixtures.stories260K)).digest.slice(7);

    b = await startDaemon({ home, env });
    const pulling = runCLI(b, ["pull", `${proxy.host}/team/story`, "--insecure"]);
    const blobs = join(b.modelsDir, "blobs");
    // Mid-pull: some of the model's bytes have landed in a part (its state counts them), not all.
    const landed = async (): Promise<boolean> => {
      for (const f of await readdir(blobs).catch(() => [] as string[])) {
        if (!f.startsWith(`sha256-${modelHex}-partial-`) || f.endsWith(".tmp")) continue;
        // A first state is written in place, not renamed into it (partial-downloads.ts): read while
        // being written it is empty or cut off, which counts as nothing landed yet.
        const state = await readFile(join(blobs, f), "utf8").then(
          (t) => {
            try {
              return JSON.parse(t) as { Completed?: number };
            } catch {
              return undefined;
            }
          },
          () => undefined,
        );
        if ((state?.Completed ?? 0) > 0) return true;
      }
      return false;
    };
    await waitFor("some of the model's bytes to land", landed, { during: { "the pull": pulling, "the daemon": exited(b.process) } });
    b.process.kill("SIGKILL");
    await pulling;

    const visible = await assertBlobsVerified(b.modelsDir);
    assert.ok(!visible.includes(`sha256-${modelHex}`), "the model blob is not visible before it is verified");
    assert.deepEqual((await listFiles(b.modelsDir)).filter((f) => f.startsWith("manifests/")), [], "no manifest");
    const check = await runCLI({ env: { ...b.env, CORRAL_HOST: "127.0.0.1:9" } }, ["fsck"]);
    assert.equal(check.code, 0, `only leftovers, no errors:\n${check.stdout}`);
    assert.ok(fsckKinds(check.stdout).includes("partial-download"), check.stdout);
    assert.deepEqual(fsckKinds(check.stdout).filter((k) => !["partial-download", "unreferenced-blob"].includes(k)), [], check.stdout);

    proxy.options.delayPerChunkMs = 0;
    b = await startDaemon({ home, env });
    const again = await runCLI(b, ["pull", `${proxy.host}/team/story`, "--insecure"]);
    assert.equal(again.code, 0, again.stderr);
    await assertBlobsVerified(b.modelsDir);
    const clean = await runCLI(b, ["fsck"]);
    assert.equal(clean.code, 0);
    assert.match(clean.stdout, /1 manifests, 3 blobs, \d+ bytes hashed: no problems found/);
  } finally {
    await b?.stop();
    await a.stop();
    await proxy.stop();
    await registry.stop();
    await rm(home, { recursive: true, force: true });
  }
});

test("killed while merging a large split GGUF: no manifest, no final-named merge; fsck --repair cleans up; create then succeeds", async () => {
  const big = join(work, "big.gguf");
  await writeLargeGGUF(big, 96 << 20, 7);
  const splitDir = join(work, "split");
  await mkdir(splitDir);
  const shards = await writeSplitGGUF(big, 2, join(splitDir, "big"));
  await rm(big);
  const shardDigests = await Promise.all(shards.map(async (s) => (await sha256File(s)).digest));
  await writeFile(join(work, "Modelfile.split"), "FROM ./split\n");
  const home = await mkdtemp(join(tmpdir(), "corral-faults-create-"));
  let d = await startDaemon({ home });
  try {
    const blobs = join(d.modelsDir, "blobs");
    const creating = runCLI(d, ["create", "merged", "-f", join(work, "Modelfile.split")]);
    // Both shards are stored under their names and a temporary file is growing: the merge.
    await waitFor(
      "the merge to start",
      async () => {
        const names = await readdir(blobs).catch(() => [] as string[]);
        return shardDigests.every((s) => names.includes(`sha256-${s.slice(7)}`)) && names.some((n) => n.startsWith(".tmp-"));
      },
      { everyMs: 5, during: { "the create": creating, "the daemon": exited(d.process) } },
    );
    d.process.kill("SIGKILL");
    const killed = await creating;
    assert.equal(killed.code, 1, "the create was interrupted");

    const visible = await assertBlobsVerified(d.modelsDir);
    assert.deepEqual(visible.sort(), shardDigests.map((s) => `sha256-${s.slice(7)}`).sort(), "only the uploaded shards are stored under a final name");
    assert.deepEqual((await listFiles(d.modelsDir)).filter((f) => f.startsWith("manifests/")), [], "no manifest");

    const env = { ...d.env, CORRAL_HOST: "127.0.0.1:9" };
    const check = await runCLI({ env }, ["fsck", "--quick"]);
    assert.equal(check.code, 0, check.stdout);
    assert.deepEqual(fsckKinds(check.stdout), ["temp-file", "unreferenced-blob"], check.stdout);
    const repair = await runCLI({ env }, ["fsck", "--repair", "--quick"]);
    assert.equal(repair.code, 0, repair.stdout);
    assert.deepEqual(await listFiles(d.modelsDir), [], "no daemon runs, so every leftover went");

    d = await startDaemon({ home });
    const created = await runCLI(d, ["create", "merged", "-f", join(work, "Modelfile.split")]);
    assert.equal(created.code, 0, created.stderr);
    const ok = await runCLI(d, ["fsck", "--quick"]);
    assert.match(ok.stdout, /1 manifests, \d+ blobs: no problems found|1 manifests, \d+ blobs: \d+ problem/);
    assert.equal(ok.code, 0);
    assert.deepEqual(fsckKinds(ok.stdout).filter((k) => k !== "unreferenced-blob"), [], "the shards may wait for the hourly prune; nothing else is left");
  } finally {
    await d.stop();
    await rm(home, { recursive: true, force: true });
  }
});
