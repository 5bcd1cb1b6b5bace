// The deployment run for real on a container engine (Debian's docker.io and docker-compose):
// infra/docker's images built from the compiled programs on a local base image (no Docker Hub:
// a debootstrapped Debian with the host's node, infra/docker/compose.offline.yml's stand-ins for
// PostgreSQL and MinIO), docker-compose.yml brought up service by service, a model pushed from
// the stack's daemon and pulled by a daemon on the host and by the stack's daemon again, and
// everything torn down (containers, networks, volumes), also when a step fails. Skipped, with the
// reason, only where no engine can run a container. Images and build layers are kept between runs
// (see helpers/container-engine.ts's cacheDir), so only the first run pays for debootstrap and npm.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canRunContainers, startEngine, tail, type Engine } from "./helpers/container-engine.ts";
import { checkoutSnapshot, debianImage, localNodeImage } from "./helpers/container-images.ts";
import { composeProject, type ComposeProject } from "./helpers/compose.ts";
import { runCLI, startDaemon, type Daemon } from "./helpers/daemon.ts";
import { freePort } from "./helpers/ports.ts";
import { fixtures } from "./fixtures.ts";

const PROJECT = "corral-e2e";
const FILES = ["docker-compose.yml", "infra/docker/compose.offline.yml"];

const started = await startEngine();
const engine: Engine | undefined = "skip" in started ? undefined : started;
let skip: string | false = "skip" in started ? started.skip : false;

let project: ComposeProject | undefined;
/** The copy of the checkout the images are built from. */
let context: string | undefined;
let hostDaemon: Daemon | undefined;
let registryPort = 0;
let daemonPort = 0;
let stackUp = false;

/** How long each phase took, for the report; nothing is asserted on it. */
const phases: string[] = [];
async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    phases.push(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

after(async () => {
  const leftovers: string[] = [];
  try {
    await hostDaemon?.stop();
    if (project) {
      const down = await phase("compose down", () => project!.down());
      if (down.code !== 0) leftovers.push(`docker-compose down failed: ${tail(down.stderr)}`);
      for (const kind of ["container", "volume", "network"]) {
        const list = kind === "container" ? ["ps", "-aq"] : [kind, "ls", "-q"];
        const left = await engine!.docker([...list, "--filter", `label=com.docker.compose.project=${PROJECT}`]);
        if (left.stdout.trim()) leftovers.push(`${kind}s of the project: ${left.stdout.trim().split("\n").join(" ")}`);
      }
    }
    // Images replaced by this run's builds; the current ones stay as the next run's cache.
    if (engine?.owned) await engine.docker(["image", "prune", "--force"]);
  } finally {
    await engine?.stop();
    if (context) await rm(context, { recursive: true, force: true });
    if (phases.length) console.error(`container phases (${engine?.description ?? "no engine"}):\n${phases.map((p) => `  ${p}`).join("\n")}`);
  }
  assert.deepEqual(leftovers, [], "the teardown removes every container, volume and network of the project");
});

async function composeOK(args: string[]): Promise<string> {
  const r = await project!.run(args);
  assert.equal(r.code, 0, `docker-compose ${args.join(" ")}:\n${tail(r.stdout + r.stderr, 40)}`);
  return r.stdout;
}

async function execOK(service: string, args: string[]): Promise<string> {
  const r = await project!.exec(service, args);
  assert.equal(r.code, 0, `${service}: ${args.join(" ")}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The files `npm pack` would put in an app's package (of the checkout in `dir`), relative to the package. */
function packedFiles(dir: string, app: string): string[] {
  const r = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts", "--workspace", app], { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const [pack] = JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>;
  return pack!.files.map((f) => f.path).sort();
}

test("the images build from the compiled programs on a local base and the stack comes up in dependency order", async (t) => {
  if (skip) return t.skip(skip);
  t.diagnostic(engine!.description);
  const debian = await phase("Debian image (debootstrap + import, or found)", () => debianImage(engine!));
  const runs = await canRunContainers(engine!, debian);
  if ("skip" in runs) {
    skip = runs.skip;
    return t.skip(skip);
  }
  const base = await phase("Node base image (or found)", () => localNodeImage(engine!, debian));
  registryPort = await freePort();
  daemonPort = await freePort();
  context = await phase("snapshot of the checkout", checkoutSnapshot);
  project = composeProject(engine!, {
    name: PROJECT,
    dir: context,
    files: FILES,
    env: {
      CORRAL_BASE_IMAGE: base,
      REGISTRY_PUBLISHED_PORT: String(registryPort),
      DAEMON_PUBLISHED_PORT: String(daemonPort),
    },
  });
  // What an interrupted run may have left.
  await project.down();
  await phase("compose build", () => composeOK(["build"]));
  const order = await phase("compose up, service by service", () => project!.upInOrder());
  stackUp = true;
  const before = (a: string, b: string): boolean => order.indexOf(a) < order.indexOf(b);
  assert.ok(before("postgres", "registry") && before("minio-setup", "registry") && before("minio", "minio-setup") && before("registry", "daemon"), order.join(", "));
  // Compose's own start, with its own waits, finds every condition met.
  await phase("compose up (all)", () => composeOK(["up", "-d", "--no-build"]));

  // The images carry exactly the files of the npm packages.
  for (const [service, app] of [["daemon", "apps/daemon"], ["registry", "apps/registry"]] as const) {
    const image = (await engine!.docker(["inspect", "--format", "{{.Config.Image}}", await project.container(service)])).stdout.trim();
    const listed = await engine!.docker(["run", "--rm", "--entrypoint", "find", image, `/app/${app}`, "-type", "f"]);
    assert.equal(listed.code, 0, listed.stderr);
    const inImage = listed.stdout.trim().split("\n").map((p) => p.slice(`/app/${app}/`.length)).sort();
    assert.deepEqual(inImage, packedFiles(context, app), `${service} image`);
  }

  const ready = await fetch(`http://127.0.0.1:${registryPort}/readyz`);
  assert.equal(ready.status, 200, "the registry is published and ready (PostgreSQL and S3 answer)");
  const daemon = await fetch(`http://127.0.0.1:${daemonPort}/`);
  assert.equal(daemon.status, 200, "the daemon is published on loopback");
});

async function greedy(url: string, model: string): Promise<string> {
  const r = await fetch(`${url}/api/generate`, { method: "POST", body: JSON.stringify({ model, prompt: "Once upon a time", stream: false }) });
  const body = (await r.json()) as { response?: string; error?: string };
  assert.equal(r.status, 200, body.error);
  return body.response!;
}

test("a model pushed from the stack's daemon is pulled by a daemon on the host and by the stack's daemon again", async (t) => {
  if (skip) return t.skip(skip);
  assert.ok(stackUp, "the stack is up (see the test before)");
  const registryHost = `127.0.0.1:${registryPort}`;
  const inStack = "registry:5005/team/story";
  hostDaemon = await startDaemon();

  const keyA = (await execOK("daemon", ["corral", "key"])).trim();
  const keyB = (await runCLI(hostDaemon, ["key"])).stdout.trim();
  assert.match(keyA, /^ssh-ed25519 /);
  for (const args of [
    ["user", "add", "alice", "--key", keyA],
    ["user", "add", "bob", "--key", keyB],
    ["org", "create", "team", "--owner", "alice"],
    ["org", "add-member", "team", "bob", "--role", "reader"],
  ]) await execOK("registry", ["corral-registry", ...args]);

  // The model goes into the daemon's container the way a user's files would: docker cp (which
  // keeps owners and modes, so the folder is made readable for the image's user `node`).
  const work = await mkdtemp(join(tmpdir(), "corral-containers-model-"));
  try {
    await chmod(work, 0o755);
    await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
    await writeFile(join(work, "Modelfile"), "FROM ./stories260K.gguf\nTEMPLATE {{ .Prompt }}\nPARAMETER temperature 0\nPARAMETER num_predict 32\n");
    const cp = await engine!.docker(["cp", work, `${await project!.container("daemon")}:/tmp/model`]);
    assert.equal(cp.code, 0, cp.stderr);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await phase("create in the stack's daemon", () => execOK("daemon", ["corral", "create", "story", "-f", "/tmp/model/Modelfile"]));
  await execOK("daemon", ["corral", "cp", "story", inStack]);
  const push = await phase("push from the stack's daemon", () => execOK("daemon", ["corral", "push", inStack, "--insecure"]));
  assert.match(push, /registry:5005\/team\/story:latest/);

  const pull = await phase("pull by the host's daemon", () => runCLI(hostDaemon!, ["pull", `${registryHost}/team/story`, "--insecure"]));
  assert.equal(pull.code, 0, pull.stderr);
  const expected = await greedy(`http://127.0.0.1:${daemonPort}`, "story");
  assert.ok(expected.startsWith(", there was a little girl named Lily"), expected);
  assert.equal(await greedy(hostDaemon.url, `${registryHost}/team/story`), expected);

  // And back into the stack: the stack's daemon forgets the model and pulls it by the in-network name.
  await execOK("daemon", ["corral", "rm", "story", inStack]);
  const again = await phase("pull by the stack's daemon", () => execOK("daemon", ["corral", "pull", inStack, "--insecure"]));
  assert.doesNotMatch(again, /Error/);
  assert.equal(await greedy(`http://127.0.0.1:${daemonPort}`, inStack), expected);
});
