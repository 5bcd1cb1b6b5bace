// Sharing a model through the team's own registry, end to end with real processes: a registry on
// PostgreSQL + S3, two daemons with their own model directories and keys. A creates team/story
// from stories260K and pushes it; B, a reader of team, pulls it and gets the same greedy output;
// B cannot push into team/ and is told which key to register where.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { startPostgres, ensurePostgres, type Postgres } from "./helpers/postgres.ts";
import { startS3, type S3Server } from "./helpers/s3.ts";
import { startRegistry, registryCLI, type RegistryProcess } from "./helpers/registry.ts";
import { fixtures } from "./fixtures.ts";

const pgAvailable = !("skip" in ensurePostgres());
let pg: Postgres;
let s3: S3Server;
let registry: RegistryProcess;
let a: Daemon;
let b: Daemon;
let keyA: string;
let keyB: string;

before(async () => {
  if (!pgAvailable) return;
  pg = await startPostgres();
  s3 = await startS3("corral-blobs");
  registry = await startRegistry({ DATABASE_URL: await pg.createDatabase("registry_e2e"), ...s3.env });
  a = await startDaemon();
  b = await startDaemon();
  keyA = (await readFile(join(a.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
  keyB = (await readFile(join(b.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
  for (const args of [
    ["user", "add", "alice", "--key", keyA],
    ["user", "add", "bob", "--key", keyB],
    ["org", "create", "team", "--owner", "alice"],
    ["org", "add-member", "team", "bob", "--role", "reader"],
  ]) {
    const r = await registryCLI(registry, args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  }
  const work = await mkdtemp(join(tmpdir(), "corral-team-"));
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(join(work, "Modelfile"), "FROM ./stories260K.gguf\nTEMPLATE {{ .Prompt }}\nPARAMETER temperature 0\nPARAMETER num_predict 32\n");
  const c = await runCLI(a, ["create", "story", "-f", join(work, "Modelfile")]);
  assert.equal(c.code, 0, c.stderr);
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await registry?.stop();
  await s3?.stop();
  await pg?.stop();
});

async function greedy(d: Daemon, model: string): Promise<string> {
  const r = await fetch(`${d.url}/api/generate`, { method: "POST", body: JSON.stringify({ model, prompt: "Once upon a time", stream: false }) });
  const body = (await r.json()) as { response?: string; error?: string };
  assert.equal(r.status, 200, body.error);
  return body.response!;
}

const skip = !pgAvailable && "PostgreSQL cannot be installed here";

test("A pushes team/story; B, a reader, pulls it and gets the same greedy output", { skip }, async () => {
  const name = `${registry.host}/team/story`;
  assert.equal((await runCLI(a, ["cp", "story", name])).code, 0);
  const push = await runCLI(a, ["push", name, "--insecure"]);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stdout, new RegExp(`You can find your model at:\\n\\n\\t${registry.host}/team/story:latest`));

  const pull = await runCLI(b, ["pull", name, "--insecure"]);
  assert.equal(pull.code, 0, pull.stderr);
  const expected = await greedy(a, "story");
  assert.ok(expected.startsWith(", there was a little girl named Lily"), expected);
  assert.equal(await greedy(b, name), expected);
  const show = await runCLI(b, ["show", name]);
  assert.match(show.stdout, /architecture\s+llama/);
  // One ID everywhere: the pusher's list, the puller's list and the registry show the same digest.
  const id = async (d: typeof a): Promise<string | undefined> =>
    ((await (await fetch(`${d.url}/api/tags`)).json()) as { models: Array<{ name: string; digest: string }> }).models.find((m) => m.name === `${name}:latest`)?.digest;
  const pushed = await id(a);
  assert.ok(pushed);
  assert.equal(await id(b), pushed, "the puller sees the pusher's ID");
});

test("B cannot push into team/ and is told which key to register where", { skip }, async () => {
  const name = `${registry.host}/team/story-b`;
  assert.equal((await runCLI(b, ["cp", `${registry.host}/team/story`, name])).code, 0);
  const push = await runCLI(b, ["push", name, "--insecure"]);
  assert.equal(push.code, 1);
  const err = push.stderr.split("\n").find((l) => l.startsWith("Error: ")) ?? "";
  assert.match(err, /not authorized to push to/);
  assert.ok(err.includes(keyB), `the error shows the key: ${err}`);
  assert.ok(err.includes(registry.host), "and the registry it must be registered on");
  const tags = await fetch(`${registry.url}/v2/team/story-b/tags/list`);
  assert.notEqual(tags.status, 200, "nothing was created");
});

test("a pull of a model that does not exist says so", { skip }, async () => {
  const r = await runCLI(b, ["pull", `${registry.host}/team/nothing`, "--insecure"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error: pull model manifest: (file does not exist|unauthorized)/);
});
