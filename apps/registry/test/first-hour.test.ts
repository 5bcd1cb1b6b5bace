// What a new admin meets in the first hour: an admin command run where there is no registry
// refuses (and names where it looked) instead of creating an empty one the running server never
// sees; `visibility` on a model nobody pushed is an error on every path (CLI, admin API, web form)
// and creates nothing; `serve` says in one human line where it listens, where its data is and
// where its admin token is, next to its JSON logs.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import { formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { trackChild, stopProcess } from "../../../test/helpers/daemon.ts";
import { registryBin, registryCLI } from "../../../test/helpers/registry.ts";
import { directAdmin } from "../src/services/admin.ts";
import { AdminError } from "../src/errors.ts";
import { findAccount } from "../src/services/accounts.ts";
import { repositories } from "../src/db/schema.ts";
import { startInProcess, pushModel, BASE, type InProcess } from "./support/in-process.ts";
import { makeModel } from "./support/fixtures.ts";
import { Browser } from "./support/web-client.ts";


/** The environment of someone who has set nothing: no registry variables at all. */
function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("REGISTRY_") || k.startsWith("S3_") || k === "DATABASE_URL") delete env[k];
  return { ...env, ...extra };
}

/** `corral-registry <args>` in `cwd` with `env`. */
const cli = (args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): ReturnType<typeof registryCLI> => registryCLI(opts, args);

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const key = formatPublicKeyLine(generateKeyPair().publicKey, "zed@laptop");
const ADMIN_COMMANDS: string[][] = [
  ["user", "add", "zed"],
  ["user", "list"],
  ["key", "add", "zed", key],
  ["org", "create", "team", "--owner", "zed"],
  ["grant", "team", "zed", "--role", "reader"],
  ["visibility", "zed/model", "public"],
  ["gc", "--dry-run"],
  ["token", "zed"],
  ["fsck"],
];

/** One `Error:` line naming the directory looked in and the two ways to name the right registry. */
function assertRefusal(r: { code: number; stdout: string; stderr: string }, dataDir: string, what: string): void {
  assert.equal(r.code, 1, `${what}: exit status\n${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, "", `${what}: prints no result`);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `${what}: one line\n${r.stderr}`);
  const line = lines[0]!;
  assert.ok(line.startsWith("Error: "), line);
  assert.ok(line.includes(dataDir), `${what}: names ${dataDir}: ${line}`);
  assert.match(line, /no running (registry )?server is recorded there/, what);
  assert.match(line, /set REGISTRY_DATA to the running registry's data directory/, what);
  assert.match(line, /DATABASE_URL/, what);
}

describe("admin commands where there is no registry", () => {
  test("in an empty folder every admin command refuses, naming ./registry-data, and creates nothing", async () => {
    const cwd = tempDir("corral-empty-");
    for (const args of ADMIN_COMMANDS) {
      const r = await cli(args, { cwd, env: bareEnv() });
      assertRefusal(r, join(cwd, "registry-data"), args.join(" "));
      assert.ok(!existsSync(join(cwd, "registry-data")), `${args.join(" ")} created no data directory`);
    }
  });

  test("a REGISTRY_DATA that does not exist, or holds no registry, is refused the same way", async () => {
    const cwd = tempDir("corral-empty-");
    const missing = join(cwd, "nowhere", "data");
    assertRefusal(await cli(["user", "add", "zed"], { cwd, env: bareEnv({ REGISTRY_DATA: missing }) }), missing, "missing REGISTRY_DATA");
    assert.ok(!existsSync(join(cwd, "nowhere")), "nothing created");
    // A folder that exists but was never a registry's (or one with a stale server.json) is no registry either.
    const empty = tempDir("corral-not-a-registry-");
    assertRefusal(await cli(["user", "add", "zed"], { cwd, env: bareEnv({ REGISTRY_DATA: empty }) }), empty, "empty REGISTRY_DATA");
    assert.ok(!existsSync(join(empty, "db")), "no database created");
  });
});

describe("with `serve` running", () => {
  let data: string;
  let server: ChildProcess;
  let url = "";
  let out = "";
  let err = "";
  let humanLine: Promise<string>;

  before(async () => {
    const cwd = tempDir("corral-serve-cwd-");
    data = join(cwd, "registry-data");
    server = spawn(process.execPath, [registryBin, "serve"], { cwd, env: bareEnv({ REGISTRY_ADDR: "127.0.0.1:0" }), stdio: ["ignore", "pipe", "pipe"] });
    trackChild(server);
    humanLine = new Promise<string>((resolve) => {
      server.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(out);
      });
    });
    // Until the JSON log line says where it listens, or the process exits.
    url = await new Promise<string>((resolve, reject) => {
      server.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(err);
        if (m) resolve(m[1]!);
      });
      server.once("exit", (code) => reject(new Error(`serve exited with ${code}:\n${out}${err}`)));
    });
  });

  after(async () => {
    if (server) await stopProcess(server);
  });

  test("serve prints one human line: its URL, its data directory and where the admin token is", async () => {
    const human = (await humanLine).split("\n").filter((l) => l !== "");
    assert.equal(human.length, 1, `one line on stdout:\n${out}`);
    assert.equal(human[0], `Corral registry at ${url} — data in ./registry-data, admin token in ./registry-data/admin-token`);
    assert.ok(existsSync(join(data, "admin-token")), "the token is where the line says");
    assert.ok(!out.includes(readFileSync(join(data, "admin-token"), "utf8").trim()), "the token itself is not printed");
    for (const l of err.split("\n").filter((x) => x.trim())) assert.doesNotThrow(() => JSON.parse(l), `stderr stays JSON lines: ${l}`);
  });

  test("an admin command run from another folder refuses; the running registry is left as it was", async () => {
    const elsewhere = tempDir("corral-elsewhere-");
    const r = await cli(["user", "add", "zed"], { cwd: elsewhere, env: bareEnv() });
    assertRefusal(r, join(elsewhere, "registry-data"), "user add from elsewhere");
    assert.ok(!existsSync(join(elsewhere, "registry-data")));
    // Pointed at the running registry, the same command works, and only now does zed exist there.
    const listed = await cli(["user", "list", "--json"], { cwd: elsewhere, env: bareEnv({ REGISTRY_DATA: data }) });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), []);
    const added = await cli(["user", "add", "zed"], { cwd: elsewhere, env: bareEnv({ REGISTRY_DATA: data }) });
    assert.equal(added.stdout, "zed (user)\n", added.stderr);
  });

  test("visibility on a model nobody pushed is an error through the running server, and makes nothing public", async () => {
    const env = bareEnv({ REGISTRY_DATA: data });
    const r = await cli(["visibility", "zed/nosuch", "public"], { cwd: tmpdir(), env });
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stderr, "Error: no model zed/nosuch; push it first\n");
    const page = await fetch(`${url}/zed/nosuch`);
    assert.equal(page.status, 404, "no empty public model in the catalog");
    const home = await (await fetch(`${url}/zed`)).text();
    assert.ok(!home.includes("nosuch"), "not listed in the namespace");
  });

  test("with the server stopped, the CLI opens the registry itself and still refuses an unknown model", async () => {
    await stopProcess(server);
    const env = bareEnv({ REGISTRY_DATA: data });
    const r = await cli(["visibility", "zed/nosuch", "public"], { cwd: tmpdir(), env });
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stderr, "Error: no model zed/nosuch; push it first\n");
    const listed = await cli(["user", "list"], { cwd: tmpdir(), env });
    assert.equal(listed.stdout, "zed (user)\n", listed.stderr);
  });
});

describe("visibility of a model that does not exist, in process", () => {
  let r: InProcess;
  const alice = generateKeyPair();

  before(async () => {
    r = await startInProcess();
    const admin = directAdmin(r.registry);
    await admin.addUser("alice", [formatPublicKeyLine(alice.publicKey)]);
    const token = await r.token(alice, "repository:alice/story:pull,push");
    await pushModel(r, token, { repo: "alice/story", tag: "latest", model: makeModel(2000) });
  });
  after(async () => r?.close());

  async function rowFor(model: string): Promise<unknown> {
    const ns = await findAccount(r.registry.db, "alice");
    const [row] = await r.registry.db.select().from(repositories).where(and(eq(repositories.namespaceId, ns!.id), eq(repositories.name, model)));
    return row;
  }

  test("the admin operation answers 404 and creates no repository", async () => {
    const admin = directAdmin(r.registry);
    await assert.rejects(admin.setVisibility("alice/nosuch", "public"), (e: unknown) => e instanceof AdminError && e.status === 404 && e.message === "no model alice/nosuch; push it first");
    assert.equal(await rowFor("nosuch"), undefined);
    // A pushed model still changes, in either direction.
    assert.deepEqual(await admin.setVisibility("alice/story", "public"), { repository: "alice/story", visibility: "public" });
    assert.deepEqual(await admin.setVisibility("alice/Story", "private"), { repository: "alice/story", visibility: "private" });
  });

  test("the admin API answers 404 with the same message", async () => {
    const res = await r.request("/admin/repositories/alice/nosuch/visibility", {
      method: "PUT",
      headers: { Authorization: "Bearer admin-secret", "Content-Type": "application/json" },
      body: JSON.stringify({ visibility: "public" }),
    });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { errors: Array<{ message: string }> };
    assert.equal(body.errors[0]!.message, "no model alice/nosuch; push it first");
    assert.equal(await rowFor("nosuch"), undefined);
  });

  test("the owner's web form answers 404 and creates no repository", async () => {
    const owner = new Browser(r);
    await owner.signIn(alice);
    const csrf = Browser.csrf((await owner.get("/alice/story")).html);
    const res = await owner.post("/-/models/alice/neverpushed", { _csrf: csrf, visibility: "public" }, { Origin: BASE });
    assert.equal(res.status, 404);
    assert.equal(await rowFor("neverpushed"), undefined);
    const ok = await owner.post("/-/models/alice/story", { _csrf: csrf, visibility: "public" }, { Origin: BASE });
    assert.equal(ok.status, 303, "the form still works for a pushed model");
  });
});
