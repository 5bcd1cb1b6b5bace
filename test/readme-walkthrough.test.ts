// Runs the README's "Five minutes with Corral" commands as they are written, from the checkout,
// against a real registry and two daemons (the second stands for "another machine"). Only the
// registry address and the /tmp paths are rewritten, so parallel runs do not collide.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, repoRoot, type Daemon } from "./helpers/daemon.ts";
import { startRegistry, type RegistryProcess } from "./helpers/registry.ts";
import { assertFirstHalf, assertSecondHalf, bash, walkthroughScripts } from "./helpers/walkthrough.ts";

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

test("the README walkthrough runs as written", async () => {
  const [first, second] = await walkthroughScripts({ registryHost: registry.host, tmp });
  const env = (d: Daemon): NodeJS.ProcessEnv => ({ ...d.env, REGISTRY_DATA: registry.env["REGISTRY_DATA"], PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env["PATH"]}` });
  const one = await bash(first, { cwd: repoRoot, env: env(a) });
  assert.equal(one.code, 0, one.out);
  assertFirstHalf(one.out, registry.host);
  assert.equal((await fetch(`${registry.url}/alice/story`)).status, 200, "the walkthrough leaves alice/story in the public catalog");
  const two = await bash(second, { cwd: repoRoot, env: env(b) });
  assert.equal(two.code, 0, two.out);
  assertSecondHalf(two.out);
});
