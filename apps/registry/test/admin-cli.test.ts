// The admin CLI while `corral-registry serve` runs on the same data directory (the CLI goes through
// the server's admin API, since PGlite admits one process), then on its own once the server stops.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess, execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fingerprint, formatPublicKeyLine, generateKeyPair, newNonce, signedAuthorization, tokenRequestChallenge, tokenRequestURL } from "@corral/shared/signing";
import { trackChild } from "../../../test/helpers/daemon.ts";

const bin = fileURLToPath(new URL("../bin/corral-registry.js", import.meta.url));
const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), "corral-registry-cli-"));
const env = { ...process.env, REGISTRY_DATA: dataDir, REGISTRY_ADDR: "127.0.0.1:0", DATABASE_URL: "", S3_BUCKET: "", REGISTRY_ADMIN_TOKEN: "" };
let server: ChildProcess;
let url = "";

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [bin, ...args], { env });
  return stdout;
}

async function cliFails(...args: string[]): Promise<string> {
  try {
    await run(process.execPath, [bin, ...args], { env });
  } catch (e) {
    return (e as { stderr: string }).stderr;
  }
  throw new Error(`corral-registry ${args.join(" ")} succeeded`);
}

before(async () => {
  server = spawn(process.execPath, [bin, "serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  trackChild(server);
  let log = "";
  // Until it says where it listens or exits: a loaded machine may take long, the test runner bounds that.
  url = await new Promise<string>((resolve, reject) => {
    server.stderr!.on("data", (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) resolve(m[1]!);
    });
    server.once("exit", (code) => reject(new Error(`serve exited with ${code}:\n${log}`)));
  });
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

const alice = generateKeyPair();
const bob = generateKeyPair();

test("admin commands work against the running server and take effect at once", async () => {
  assert.match(await cli("user", "add", "alice", "--key", formatPublicKeyLine(alice.publicKey)), /alice \(user\)\n {2}key SHA256:/);
  await cli("user", "add", "bob");
  await cli("key", "add", "bob", formatPublicKeyLine(bob.publicKey, "bob@laptop"));
  assert.match(await cli("org", "create", "team", "--owner", "alice"), /member alice: owner/);
  assert.match(await cli("org", "add-member", "team", "bob", "--role", "writer"), /member bob: writer/);
  // Nothing was pushed to team/model yet: making it public would put an empty model in the catalog.
  assert.match(await cliFails("visibility", "team/model", "public"), /no model team\/model; push it first/);
  assert.match(await cliFails("user", "add", "alice"), /already exists/);
  assert.match(await cliFails("key", "add", "bob", "ssh-rsa AAAAB3NzaC1yc2E"), /expected key type ssh-ed25519/);
  assert.match(await cliFails("org", "add-member", "team", "nobody", "--role", "reader"), /does not exist/);
  assert.match(await cliFails("user", "add", "../etc"), /invalid account name/);
  // The organisation's only owner cannot be demoted: that would leave nobody able to manage it.
  assert.equal(
    await cliFails("grant", "team", "alice", "--role", "reader"),
    "Error: team must keep at least one owner: make another member an owner first\n",
  );
  assert.match(await cliFails("org", "add-member", "team", "alice", "--role", "writer"), /team must keep at least one owner/);

  const list = JSON.parse(await cli("user", "list", "--json")) as Array<{ name: string; keys: unknown[]; members: Array<{ name: string; role: string }> }>;
  assert.deepEqual(list.map((a) => a.name), ["alice", "bob", "team"]);
  assert.deepEqual(list.find((a) => a.name === "team")!.members, [{ name: "alice", role: "owner" }, { name: "bob", role: "writer" }]);

  // Bob's key now gets push on the organisation's model from the running server.
  const host = new URL(url).host;
  const tokenURL = tokenRequestURL({ realm: `${url}/v2/token`, service: host, scope: "repository:team/model:push,pull", ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
  const res = await fetch(tokenURL, { headers: { Authorization: signedAuthorization(bob, tokenRequestChallenge(tokenURL)) } });
  const { token } = (await res.json()) as { token: string };
  const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { sub: string; access: Array<{ actions: string[] }> };
  assert.equal(claims.sub, "bob");
  assert.deepEqual(claims.access[0]!.actions, ["push", "pull"]);

  await cli("key", "remove", "bob", fingerprint(bob.publicKey));
  const gc = JSON.parse(await cli("gc")) as { blobsRemoved: number; dryRun: boolean };
  assert.equal(gc.dryRun, false);
  const minted = (await cli("token", "alice", "--scope", "repository:team/model:pull", "--service", host)).trim();
  assert.equal((await fetch(`${url}/v2/`, { headers: { Authorization: `Bearer ${minted}` } })).status, 200);
});

test("with the server stopped the CLI opens the data directory itself", async () => {
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  await exited;
  const out = await cli("user", "list");
  assert.match(out, /^bob \(user\)\n/m);
  assert.doesNotMatch(out.split("team (org)")[0]!.split("bob (user)")[1]!, /key /, "bob's key was removed");
  assert.match(await cliFails("grant", "team", "alice", "--role", "reader"), /^Error: team must keep at least one owner/, "refused on the database too");
});
