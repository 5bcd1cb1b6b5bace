// Runs the README's "Five minutes with Corral" commands as they are written, against a real
// registry and two daemons (the second stands for "another machine"). Only the registry address
// and the /tmp paths are rewritten, so parallel runs do not collide.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, repoRoot, type Daemon } from "./helpers/daemon.ts";
import { startRegistry, type RegistryProcess } from "./helpers/registry.ts";

let registry: RegistryProcess;
let a: Daemon;
let b: Daemon;
let tmp: string;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "corral-readme-"));
  registry = await startRegistry({ REGISTRY_DATA: join(tmp, "registry-data") });
  a = await startDaemon();
  b = await startDaemon();
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await registry?.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function walkthrough(): Promise<[string, string]> {
  const readme = await readFile(join(repoRoot, "README.md"), "utf8");
  const m = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme);
  assert.ok(m, "the README has a walkthrough block");
  const script = m[1]!.replaceAll("127.0.0.1:5005", registry.host).replaceAll("/tmp/", `${tmp}/`);
  const [first, second] = script.split(/^# --- on another machine.*$/m);
  assert.ok(first && second, "the walkthrough has an 'on another machine' part");
  return [first, second];
}

function bash(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", script], {
      cwd: repoRoot,
      env: { ...env, REGISTRY_DATA: registry.env["REGISTRY_DATA"], PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env["PATH"]}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out }));
  });
}

test("the README walkthrough runs as written", async () => {
  const [first, second] = await walkthrough();
  const one = await bash(first, a.env);
  assert.equal(one.code, 0, one.out);
  assert.match(one.out, /, there was a little girl named Lily/);
  assert.match(one.out, /story:q8\s+[0-9a-f]{12}/);
  assert.match(one.out, /quantization\s+Q8_0/);
  assert.match(one.out, new RegExp(`You can find your model at:\\s+${registry.host}/alice/story:latest`));

  const two = await bash(second, b.env);
  assert.equal(two.code, 0, two.out);
  assert.match(two.out, /success/);
  assert.match(two.out, /, there was a little girl named Lily/);
});
