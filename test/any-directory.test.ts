// Both programs work from any working directory, not only from the repository root where tsx finds
// tsconfig.json: `corral-registry serve` and `corral serve` are started in a fresh temporary
// directory; the daemon creates a tiny model from a Modelfile there, runs it, and pushes it; every
// kind of catalog page (home, sign-in help, namespace, model, tag) renders.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCLI, startDaemon, type Daemon } from "./helpers/daemon.ts";
import { registryCLI, startRegistry, type RegistryProcess } from "./helpers/registry.ts";
import { fixtures } from "./fixtures.ts";

let work: string;
let registry: RegistryProcess;
let daemon: Daemon;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "corral-elsewhere-"));
  registry = await startRegistry({}, { cwd: work });
  daemon = await startDaemon({ cwd: work });
});

after(async () => {
  await daemon?.stop();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function page(path: string): Promise<string> {
  const res = await fetch(`${registry.url}${path}`);
  const text = await res.text();
  assert.equal(res.status, 200, `${path}: ${text.slice(0, 300)}`);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/, path);
  assert.match(text, /^<!DOCTYPE html>/i, path);
  assert.match(text, /<\/html>\s*$/, path);
  return text;
}

test("the registry started outside the repository renders its catalog pages", async () => {
  assert.match(await page("/"), /<title>[^<]*Corral/);
  await page("/-/login");
});

test("the daemon started outside the repository creates, runs and pushes a model from a Modelfile there", async () => {
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(join(work, "Modelfile"), ["FROM ./stories260K.gguf", "PARAMETER temperature 0", "PARAMETER num_predict 16", ""].join("\n"));
  const created = await runCLI(daemon, ["create", "tiny", "-f", "Modelfile"], { cwd: work });
  assert.equal(created.code, 0, created.stderr);
  const ran = await runCLI(daemon, ["run", "tiny", "Once upon a time"], { cwd: work });
  assert.equal(ran.code, 0, ran.stderr);
  assert.ok(ran.stdout.trim().length > 0, "the model answered");

  const key = (await readFile(join(daemon.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
  const added = await registryCLI(registry, ["user", "add", "alice", "--key", key]);
  assert.equal(added.code, 0, added.stderr);
  const name = `${registry.host}/alice/tiny:latest`;
  assert.equal((await runCLI(daemon, ["cp", "tiny", name], { cwd: work })).code, 0);
  const pushed = await runCLI(daemon, ["push", name, "--insecure"], { cwd: work });
  assert.equal(pushed.code, 0, pushed.stderr);
  const visible = await registryCLI(registry, ["visibility", "alice/tiny", "public"]);
  assert.equal(visible.code, 0, visible.stderr);

  assert.match(await page("/alice"), /alice\/tiny|tiny/);
  assert.match(await page("/alice/tiny"), /stories|llama|tiny/i);
  await page("/alice/tiny/tags/latest");
});
