// Two `corral-registry serve` processes on one PostgreSQL database and one S3 bucket behave as one
// registry: they start together (migrations take turns), a model pushed by a daemon through one is
// pulled by another daemon through the other, an upload session moves between them chunk by chunk,
// a token issued by one is accepted by the other, and a signed token request's nonce is spent for
// both. They share REGISTRY_URL, the load balancer's name, and each also accepts its own address
// (REGISTRY_EXTRA_URLS), which the daemons use. At the end the database goes away and readiness
// says so.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256Bytes } from "@corral/shared/digest";
import { formatPublicKeyLine, generateKeyPair, newNonce, signedAuthorization, tokenRequestChallenge, tokenRequestURL } from "@corral/shared/signing";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { startPostgres, ensurePostgres, type Postgres } from "./helpers/postgres.ts";
import { startS3, type S3Server } from "./helpers/s3.ts";
import { startRegistry, registryCLI, type RegistryProcess } from "./helpers/registry.ts";
import { fixtures } from "./fixtures.ts";

const pgAvailable = !("skip" in ensurePostgres());
const skip = !pgAvailable && "PostgreSQL cannot be installed here";
let pg: Postgres;
let s3: S3Server;
let a: RegistryProcess;
let b: RegistryProcess;
let pusher: Daemon;
let puller: Daemon;

/** The name clients use for the registry: a load balancer in front of both keeps this Host. */
const SERVICE = "registry.internal";

before(async () => {
  if (!pgAvailable) return;
  pg = await startPostgres();
  s3 = await startS3("corral-replicas");
  // One registry, one URL (and so one token audience); each replica is also reached at its own address.
  const env = { DATABASE_URL: await pg.createDatabase("replicas"), ...s3.env, REGISTRY_URL: `http://${SERVICE}`, REGISTRY_ADMIN_TOKEN: "" };
  const replica = (host: string): NodeJS.ProcessEnv => ({ ...env, REGISTRY_EXTRA_URLS: `http://${host}` });
  // Started together on an empty database: one applies the migrations while the other waits.
  [a, b] = await Promise.all([startRegistry(replica), startRegistry(replica)]);
  [pusher, puller] = await Promise.all([startDaemon(), startDaemon()]);
  const keyOf = async (d: Daemon): Promise<string> => (await readFile(join(d.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
  for (const args of [
    ["user", "add", "alice", "--key", await keyOf(pusher)],
    ["user", "add", "bob", "--key", await keyOf(puller)],
    ["grant", "alice", "bob", "--role", "reader"],
  ]) {
    const r = await registryCLI(a, args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  }
});

after(async () => {
  await pusher?.stop();
  await puller?.stop();
  await a?.stop();
  await b?.stop();
  await s3?.stop();
  await pg?.stop();
});

test("the replicas started together on one empty database, and keep nothing on local disk", { skip }, async () => {
  for (const r of [a, b]) {
    assert.match(r.logs(), /listening on http:\/\/\S+ \(database: postgres, blobs: s3\)/);
    const ready = await fetch(`${r.url}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
  }
  // With PostgreSQL there is no server.json or generated admin token to disagree about.
  const dataA = a.env["REGISTRY_DATA"]!;
  await assert.rejects(readFile(join(dataA, "server.json")), { code: "ENOENT" });
  await assert.rejects(readFile(join(dataA, "admin-token")), { code: "ENOENT" });
  assert.equal((await fetch(`${a.url}/admin/users`)).status, 404, "no admin API without REGISTRY_ADMIN_TOKEN");
});

test("a daemon pushes through one replica; another daemon pulls the same model through the other", { skip }, async () => {
  const work = await mkdtemp(join(tmpdir(), "corral-replicas-"));
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(join(work, "Modelfile"), "FROM ./stories260K.gguf\nTEMPLATE {{ .Prompt }}\nPARAMETER temperature 0\n");
  assert.equal((await runCLI(pusher, ["create", "story", "-f", join(work, "Modelfile")])).code, 0);
  const viaA = `${a.host}/alice/story:v1`;
  assert.equal((await runCLI(pusher, ["cp", "story", viaA])).code, 0);
  const push = await runCLI(pusher, ["push", viaA, "--insecure"]);
  assert.equal(push.code, 0, push.stderr);

  const viaB = `${b.host}/alice/story:v1`;
  const pull = await runCLI(puller, ["pull", viaB, "--insecure"]);
  assert.equal(pull.code, 0, pull.stderr);
  const pushed = await readFile(join(pusher.modelsDir, "manifests", a.host, "alice", "story", "v1"));
  const pulled = await readFile(join(puller.modelsDir, "manifests", b.host, "alice", "story", "v1"));
  assert.deepEqual(JSON.parse(pulled.toString()), JSON.parse(pushed.toString()), "B serves the manifest A received");
  const list = await runCLI(puller, ["list"]);
  assert.match(list.stdout, new RegExp(`${b.host}/alice/story:v1`));
  // Each replica saw its half of the traffic.
  assert.match(a.logs(), /"method":"PUT","path":"\/v2\/alice\/story\/manifests\/v1"[^\n]*"status":201/);
  assert.match(b.logs(), /"method":"GET","path":"\/v2\/alice\/story\/manifests\/v1"[^\n]*"status":200/);
  assert.doesNotMatch(b.logs(), /"method":"PUT"/);
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A request to one replica as a load balancer would forward it: with the shared Host. */
function call(r: RegistryProcess, method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<Reply> {
  const { headers = {}, body } = opts;
  return new Promise((resolve, reject) => {
    const [hostname, port] = r.host.split(":");
    const req = httpRequest({ hostname, port: Number(port), method, path, headers: { Host: SERVICE, ...headers, ...(body ? { "Content-Length": String(body.length) } : {}) } }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("an upload started on A continues on B and finishes on A; a token from A works on B; a nonce spent on A is spent on B", { skip }, async () => {
  const key = generateKeyPair("carol@replicas");
  assert.equal((await registryCLI(a, ["user", "add", "carol", "--key", formatPublicKeyLine(key.publicKey, "carol")])).code, 0);
  const url = tokenRequestURL({ realm: `http://${SERVICE}/v2/token`, service: SERVICE, scope: "repository:carol/raw:pull,push", ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
  const signed = { Authorization: signedAuthorization(key, tokenRequestChallenge(url)) };
  const pathAndQuery = url.slice(`http://${SERVICE}`.length);
  const issued = await call(a, "GET", pathAndQuery, { headers: signed });
  assert.equal(issued.status, 200, issued.body.toString());
  const token = (JSON.parse(issued.body.toString()) as { token: string }).token;
  const replay = await call(b, "GET", pathAndQuery, { headers: signed });
  assert.equal(replay.status, 401);
  assert.match(replay.body.toString(), /already used/, "B knows the nonce A accepted");
  const auth = { Authorization: `Bearer ${token}` };

  const data = randomBytes(3 * 1024 * 1024 + 123);
  const digest = sha256Bytes(data);
  const cut1 = 1024 * 1024;
  const cut2 = 2 * 1024 * 1024 + 7;
  const started = await call(a, "POST", "/v2/carol/raw/blobs/uploads/", { headers: auth });
  assert.equal(started.status, 202, started.body.toString());
  const location = new URL(String(started.headers["location"]));
  assert.equal(location.host, SERVICE);
  const session = location.pathname;

  const chunk = (from: number, to: number): Record<string, string> => ({ ...auth, "Content-Type": "application/octet-stream", "Content-Range": `${from}-${to - 1}` });
  const p1 = await call(b, "PATCH", session, { headers: chunk(0, cut1), body: data.subarray(0, cut1) });
  assert.equal(p1.status, 202, `B accepts a chunk for A's session: ${p1.body.toString()}`);
  assert.equal(p1.headers["range"], `0-${cut1 - 1}`);
  const status = await call(a, "GET", session, { headers: auth });
  assert.equal(status.status, 204);
  assert.equal(status.headers["range"], `0-${cut1 - 1}`, "A sees the size B recorded");
  const stale = await call(a, "PATCH", session, { headers: chunk(0, cut1), body: data.subarray(0, cut1) });
  assert.equal(stale.status, 416, "a chunk at an offset B already filled is refused by A");
  const p2 = await call(a, "PATCH", session, { headers: chunk(cut1, cut2), body: data.subarray(cut1, cut2) });
  assert.equal(p2.status, 202, p2.body.toString());
  const p3 = await call(b, "PATCH", session, { headers: chunk(cut2, data.length), body: data.subarray(cut2) });
  assert.equal(p3.status, 202, p3.body.toString());
  const done = await call(a, "PUT", `${session}?digest=${digest}`, { headers: auth });
  assert.equal(done.status, 201, done.body.toString());

  for (const r of [a, b]) {
    // The bucket is on another host than the service name, so the blob GET redirects to it.
    const got = await call(r, "GET", `/v2/carol/raw/blobs/${digest}`, { headers: auth });
    assert.equal(got.status, 307, got.body.toString());
    const bytes = Buffer.from(await (await fetch(String(got.headers["location"]))).arrayBuffer());
    assert.equal(sha256Bytes(bytes), digest);
  }
  // One audience per registry: the admin CLI's token (for the registry's own service by default) is
  // good on either replica; a token for another service is good on neither.
  const minted = await registryCLI(a, ["token", "carol", "--scope", "repository:carol/raw:pull"]);
  assert.equal(minted.code, 0, minted.stderr);
  assert.equal((await call(b, "GET", `/v2/carol/raw/blobs/${digest}`, { headers: { Authorization: `Bearer ${minted.stdout.trim()}` } })).status, 307);
  const elsewhere = await registryCLI(a, ["token", "carol", "--scope", "repository:carol/raw:pull", "--service", b.host]);
  assert.equal(elsewhere.code, 0, elsewhere.stderr);
  for (const r of [a, b]) {
    const wrongService = await call(r, "GET", `/v2/carol/raw/blobs/${digest}`, { headers: { Authorization: `Bearer ${elsewhere.stdout.trim()}` } });
    assert.equal(wrongService.status, 401, "a token is for the service it was issued for, not for any address");
  }
});

test("when the database goes away, readiness fails while liveness holds", { skip }, async () => {
  await pg.stop();
  const ready = await fetch(`${b.url}/readyz`);
  assert.equal(ready.status, 503);
  const body = (await ready.json()) as { ready: boolean; checks: { database: { ok: boolean; error?: string }; blobs: { ok: boolean } } };
  assert.equal(body.ready, false);
  assert.equal(body.checks.database.ok, false);
  assert.ok(body.checks.database.error);
  assert.equal(body.checks.blobs.ok, true);
  assert.equal((await fetch(`${b.url}/healthz`)).status, 200);
});
