// Corral installed the way someone who does not clone gets it: the npm tarballs of apps/daemon and
// apps/registry (`npm pack`) installed with `npm install -g` into an empty prefix, then the README's
// walkthrough run with those `corral` and `corral-registry` from a directory outside the checkout,
// with no TypeScript tooling and no workspace on the way. Dependencies come from the npm registry
// (or npm's cache), as for a user.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, repoRoot, type Daemon } from "./helpers/daemon.ts";
import { startRegistry, type RegistryProcess } from "./helpers/registry.ts";
import { assertFirstHalf, assertSecondHalf, bash, walkthroughScripts } from "./helpers/walkthrough.ts";

let tmp: string;
let prefix: string;
let work: string;
let registry: RegistryProcess;
let a: Daemon;
let b: Daemon;

/**
 * Runs npm, its output going to a file: an install script's process that outlives npm (a
 * dependency's postinstall may leave one behind) would hold a pipe open, and waiting for the pipe
 * to close would wait for it, where a person's shell returns when npm exits.
 */
async function npm(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const log = join(tmp, `npm-${args[0]}.log`);
  const fh = await open(log, "w");
  try {
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn("npm", args, { cwd, env: { ...process.env, npm_config_update_notifier: "false" }, stdio: ["ignore", fh.fd, fh.fd] });
      child.on("error", reject);
      child.on("exit", (c, signal) => resolve(c ?? (signal ? 128 : -1)));
    });
    return { code, out: await readFile(log, "utf8") };
  } finally {
    await fh.close();
  }
}

/** PATH with the installed programs and node, and nothing of the checkout. */
function installedPath(): string {
  const outside = (process.env["PATH"] ?? "").split(":").filter((p) => p && !p.startsWith(repoRoot));
  return [join(prefix, "bin"), ...outside].join(":");
}

before(async () => {
  assert.ok(existsSync(join(repoRoot, "apps/daemon/dist/cli.js")) && existsSync(join(repoRoot, "apps/registry/dist/cli.js")), "the apps are built (npm run build)");
  tmp = await mkdtemp(join(tmpdir(), "corral-install-"));
  prefix = join(tmp, "prefix");
  work = join(tmp, "work");
  const packs = join(tmp, "packs");
  await mkdir(packs);
  await mkdir(work);
  const packed = await npm(["pack", "-w", "apps/daemon", "-w", "apps/registry", "--pack-destination", packs], repoRoot);
  assert.equal(packed.code, 0, packed.out);
  const tarballs = (await readdir(packs)).filter((f) => f.endsWith(".tgz")).map((f) => join(packs, f));
  assert.equal(tarballs.length, 2, packed.out);
  const installed = await npm(["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", ...tarballs], tmp);
  assert.equal(installed.code, 0, installed.out);

  const bin = (name: string): string => join(prefix, "lib/node_modules/@corral", name, "bin", name === "daemon" ? "corral.js" : "corral-registry.js");
  registry = await startRegistry({ REGISTRY_DATA: join(tmp, "registry-data") }, { cwd: work, bin: bin("registry") });
  a = await startDaemon({ cwd: work, bin: bin("daemon") });
  b = await startDaemon({ cwd: work, bin: bin("daemon") });
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await registry?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test("the installed packages carry compiled JavaScript only, and their bins are on PATH", async () => {
  for (const name of ["corral", "corral-registry"]) assert.ok(existsSync(join(prefix, "bin", name)), `${name} is installed`);
  for (const app of ["daemon", "registry"]) {
    const files = await readdir(join(prefix, "lib/node_modules/@corral", app, "dist"));
    assert.ok(files.includes("cli.js"), `${app}: ${files.join(", ")}`);
    assert.ok(!files.some((f) => f.endsWith(".ts") || f.endsWith(".tsx")), `${app} ships no TypeScript`);
    assert.ok(!existsSync(join(prefix, "lib/node_modules/@corral", app, "node_modules/tsx")), `${app} does not depend on tsx`);
  }
  const version = await bash("corral --version; corral-registry --help", { cwd: work, env: { ...a.env, PATH: installedPath() } });
  assert.equal(version.code, 0, version.out);
  assert.match(version.out, /corral version is 0\.1\.0/);
  assert.match(version.out, /Usage: corral-registry/);
});

test("the README walkthrough runs with the installed programs, from a directory outside the checkout", async () => {
  const [first, second] = await walkthroughScripts({ registryHost: registry.host, tmp, withoutNpx: true, absoluteFixtures: true });
  const env = (d: Daemon): NodeJS.ProcessEnv => ({ ...d.env, REGISTRY_DATA: registry.env["REGISTRY_DATA"], PATH: installedPath() });
  const one = await bash(first, { cwd: work, env: env(a) });
  assert.equal(one.code, 0, one.out);
  assertFirstHalf(one.out, registry.host);
  assert.equal((await fetch(`${registry.url}/alice/story`)).status, 200, "the walkthrough leaves alice/story in the public catalog");
  const two = await bash(second, { cwd: work, env: env(b) });
  assert.equal(two.code, 0, two.out);
  assertSecondHalf(two.out);
});
