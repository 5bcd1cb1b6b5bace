// Operating `corral-registry serve` as a real process: configuration errors name their variable and
// exit non-zero; /healthz, /readyz and /metrics; JSON request logs with request ids and no secrets;
// readiness follows the blob store; SIGTERM lets an in-flight upload finish, and an upload cut off
// by the shutdown timeout resumes on the next process; `migrate` applies migrations and exits.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { mkdtemp, rm, readdir } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256Bytes } from "@corral/shared/digest";
import { startRegistry, registryBin, type RegistryProcess } from "./helpers/registry.ts";
import { startS3 } from "./helpers/s3.ts";
import { freePort } from "./helpers/ports.ts";
import { trackChild } from "./helpers/daemon.ts";

const ADMIN = "ops-admin-token";
const SECRET_QUERY = "sig=not-for-logs-0123456789";
let dataDir: string;
let r: RegistryProcess;
let token: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "corral-ops-"));
  r = await startRegistry({ REGISTRY_DATA: dataDir, REGISTRY_ADMIN_TOKEN: ADMIN, DATABASE_URL: "", S3_BUCKET: "", REGISTRY_SHUTDOWN_TIMEOUT: "" });
  const admin = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${r.url}/admin${path}`, { method: "POST", headers: { Authorization: `Bearer ${ADMIN}` }, body: JSON.stringify(body) });
    assert.equal(res.status, 201, await res.clone().text());
    return (await res.json()) as Record<string, unknown>;
  };
  await admin("/users", { name: "ops" });
  token = (await admin("/tokens", { user: "ops", scopes: ["repository:ops/model:pull,push"] }))["token"] as string;
});

after(async () => {
  await r?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/**
 * Runs `corral-registry <args>` with `env` on top of a clean registry environment, until it exits:
 * a `serve` that should have refused its configuration and did not is ended by the test runner's
 * overall limit, and killed with the test process.
 */
function runRegistry(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [registryBin, ...args], {
      env: { ...process.env, REGISTRY_DATA: join(dataDir, "unused"), REGISTRY_ADDR: "127.0.0.1:0", DATABASE_URL: "", S3_BUCKET: "", S3_ENDPOINT: "", REGISTRY_URL: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    trackChild(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

test("bad configuration exits non-zero with a message naming the variable", async () => {
  const deadPort = await freePort(); // nothing listens there
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const busyPort = (busy.address() as { port: number }).port;
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ REGISTRY_URL: "registry.example.com" }, /REGISTRY_URL: not a URL/],
    [{ REGISTRY_URL: "ftp://registry.example.com" }, /REGISTRY_URL: expected http:\/\/ or https:\/\//],
    [{ S3_BUCKET: "b", S3_ENDPOINT: "minio:9000:x" }, /S3_ENDPOINT: /],
    [{ DATABASE_URL: "not a url" }, /DATABASE_URL: not a URL/],
    [{ DATABASE_URL: "mysql://u:pw@db/x" }, /DATABASE_URL: expected postgres:\/\//],
    [{ DATABASE_URL: `postgres://corral:hunter2@127.0.0.1:${deadPort}/corral` }, new RegExp(`DATABASE_URL: cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${deadPort}/corral: .*ECONNREFUSED`)],
    [{ REGISTRY_ADDR: "localhost" }, /REGISTRY_ADDR: expected host:port/],
    [{ REGISTRY_ADDR: "127.0.0.1:70000" }, /REGISTRY_ADDR: port 70000 is out of range/],
    [{ REGISTRY_ADDR: `127.0.0.1:${busyPort}` }, new RegExp(`REGISTRY_ADDR: 127\\.0\\.0\\.1:${busyPort} is already in use`)],
    [{ REGISTRY_ADDR: "192.0.2.1:5005" }, /REGISTRY_ADDR: 192\.0\.2\.1:5005 is not an address of this machine/],
    [{ REGISTRY_SHUTDOWN_TIMEOUT: "soon" }, /REGISTRY_SHUTDOWN_TIMEOUT: expected a non-negative number/],
    [{ REGISTRY_LOG_LEVEL: "loud" }, /REGISTRY_LOG_LEVEL: expected one of debug, info, warn, error/],
  ];
  try {
    // Two at a time: each is a whole process start.
    for (let i = 0; i < cases.length; i += 2) {
      await Promise.all(
        cases.slice(i, i + 2).map(async ([env, want]) => {
          // Each its own data directory: the address cases get as far as opening the database.
          const res = await runRegistry(["serve"], { REGISTRY_DATA: await mkdtemp(join(dataDir, "case-")), ...env });
          assert.equal(res.code, 1, `${JSON.stringify(env)}: exit ${res.code}\n${res.stderr}`);
          assert.match(res.stderr, want, JSON.stringify(env));
          assert.doesNotMatch(res.stderr, /hunter2/, "the database password is never printed");
        }),
      );
    }
  } finally {
    busy.close();
  }
  const migrate = await runRegistry(["migrate"], { DATABASE_URL: `postgresql://corral:hunter2@127.0.0.1:${deadPort}/corral` });
  assert.equal(migrate.code, 1);
  assert.match(migrate.stderr, /DATABASE_URL: cannot connect to PostgreSQL/);
  assert.doesNotMatch(migrate.stderr, /hunter2/);
});

test("migrate applies the migrations to the embedded database and exits", async () => {
  const dir = await mkdtemp(join(tmpdir(), "corral-migrate-"));
  try {
    const res = await runRegistry(["migrate"], { REGISTRY_DATA: dir });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /migrations applied \(embedded database in /);
    assert.ok((await readdir(join(dir, "db"))).length > 0, "the database was created");
    // A second run finds nothing to do and still succeeds.
    assert.equal((await runRegistry(["migrate"], { REGISTRY_DATA: dir })).code, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function logLines(proc: RegistryProcess): Array<Record<string, unknown>> {
  return proc
    .logs()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Polls until `probe` gives a value; a wait that never ends is ended by the test runner's overall limit. */
async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (;;) {
    let v: T | undefined;
    try {
      v = await probe();
    } catch (e) {
      throw new Error(`waiting for ${what}: ${(e as Error).message}`, { cause: e });
    }
    if (v !== undefined) return v;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Waits until `proc` counts an upload in flight: the request has reached its handler. */
async function uploadReached(proc: RegistryProcess): Promise<void> {
  await waitFor("the upload to reach the registry", async () => {
    const metrics = parseMetrics(await (await fetch(`${proc.url}/metrics`)).text());
    return (metrics.get("corral_registry_uploads_in_flight") ?? 0) >= 1 ? true : undefined;
  });
}

test("health, readiness, request ids and JSON request logs without secrets", async () => {
  const health = await fetch(`${r.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  const ready = await fetch(`${r.url}/readyz`);
  assert.equal(ready.status, 200);
  const body = (await ready.json()) as { ready: boolean; checks: { database: { ok: boolean }; blobs: { ok: boolean } } };
  assert.equal(body.ready, true);
  assert.equal(body.checks.database.ok, true);
  assert.equal(body.checks.blobs.ok, true);

  const mine = await fetch(`${r.url}/v2/ops/model/tags/list?${SECRET_QUERY}`, { headers: { Authorization: `Bearer ${token}`, "X-Request-Id": "trace-42.a" } });
  assert.equal(mine.headers.get("x-request-id"), "trace-42.a", "an incoming request id is honoured");
  const generated = await fetch(`${r.url}/v2/`, { headers: { "X-Request-Id": "bad id with spaces" } });
  const id = generated.headers.get("x-request-id") ?? "";
  assert.match(id, /^[0-9a-f-]{36}$/, "an unusable one is replaced by a new id");

  const line = await waitFor("the request's log line", () => logLines(r).find((l) => l["id"] === "trace-42.a"));
  assert.equal(line["level"], "info");
  assert.equal(line["msg"], "request");
  assert.equal(line["method"], "GET");
  assert.equal(line["path"], "/v2/ops/model/tags/list");
  assert.equal(line["route"], "/v2/:ns/:model/tags/list");
  assert.equal(line["status"], 404);
  assert.equal(line["subject"], "ops");
  assert.equal(typeof line["duration_ms"], "number");
  assert.ok((line["bytes_in"] as number) > 0 && (line["bytes_out"] as number) > 0);
  assert.ok(typeof line["time"] === "string" && !Number.isNaN(Date.parse(line["time"] as string)));
  await waitFor("the second log line", () => logLines(r).find((l) => l["id"] === id));
  const logs = r.logs();
  assert.ok(!logs.includes(token), "no bearer token in the logs");
  assert.ok(!logs.includes("not-for-logs"), "no query strings (signatures) in the logs");
  assert.ok(!logs.includes(ADMIN), "no admin token in the logs");
  // Besides the JSON log lines, serve prints one line for people at start (on stdout).
  const human = (l: string): boolean => l.startsWith("Corral registry at ");
  assert.equal(logs.split("\n").filter(human).length, 1, "one human start line");
  for (const l of logs.split("\n").filter((x) => x.trim() && !human(x))) assert.doesNotThrow(() => JSON.parse(l), `every log line is JSON: ${l}`);
});

/** Parses the exposition into sample name{labels} → value, checking each family is declared. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const types = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const t = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
    if (t) types.add(t[1]!);
    if (line.startsWith("#")) continue;
    const m = /^([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(m, `sample line: ${line}`);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, "");
    assert.ok(types.has(m[1]!) || types.has(family), `family of ${m[1]} is declared`);
    samples.set(`${m[1]}${m[2] ?? ""}`, Number(m[3]));
  }
  return samples;
}

/** Starts a request whose body is written by the caller; resolves the response when it comes. */
function streamingRequest(proc: RegistryProcess, method: string, path: string, headers: Record<string, string>): { req: ClientRequest; response: Promise<IncomingMessage & { text: string }> } {
  const [hostname, port] = proc.host.split(":");
  let req!: ClientRequest;
  const response = new Promise<IncomingMessage & { text: string }>((resolve, reject) => {
    req = httpRequest({ hostname, port: Number(port), method, path, headers, agent: false }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve(Object.assign(res, { text })));
    });
    req.on("error", reject);
  });
  req.flushHeaders();
  return { req, response };
}

async function startUpload(proc: RegistryProcess, auth: string): Promise<string> {
  const res = await fetch(`${proc.url}/v2/ops/model/blobs/uploads/`, { method: "POST", headers: { Authorization: `Bearer ${auth}` } });
  assert.equal(res.status, 202, await res.text());
  return new URL(res.headers.get("location")!).pathname;
}

test("/metrics counts requests by route and status, bytes, and uploads in flight", async () => {
  const scrape = async (): Promise<Map<string, number>> => {
    const res = await fetch(`${r.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return parseMetrics(await res.text());
  };
  const before = await scrape();
  for (let i = 0; i < 3; i++) await (await fetch(`${r.url}/v2/ops/model/manifests/latest`)).arrayBuffer();
  const mid = await scrape();
  const counted = [...mid.entries()].find(([k]) => k.startsWith("corral_registry_http_requests_total{") && k.includes('route="/v2/:ns/:model/manifests/') && k.includes('status="401"'));
  assert.ok(counted, `a series for the manifest route: ${[...mid.keys()].filter((k) => k.includes("manifests")).join(", ")}`);
  const series = counted[0].slice("corral_registry_http_requests_total".length);
  assert.equal(counted[1] - (before.get(`corral_registry_http_requests_total${series}`) ?? 0), 3);
  assert.equal(mid.get(`corral_registry_http_request_duration_seconds_count${series}`), counted[1]);
  assert.equal(mid.get(`corral_registry_http_request_duration_seconds_bucket${series.replace(/}$/, ',le="+Inf"}')}`), counted[1]);

  // An upload chunk in progress is visible as such, and its bytes are counted once it ends.
  const session = await startUpload(r, token);
  const data = randomBytes(256 * 1024);
  const { req, response } = streamingRequest(r, "PATCH", session, { Authorization: `Bearer ${token}`, "Content-Type": "application/octet-stream", "Content-Length": String(data.length) });
  req.write(data.subarray(0, 1000));
  const during = await waitFor("the upload in flight", async () => {
    const s = await scrape();
    return (s.get("corral_registry_uploads_in_flight") ?? 0) >= 1 ? s : undefined;
  });
  assert.ok((during.get("corral_registry_http_requests_in_flight") ?? 0) >= 2, "the upload and the scrape itself");
  req.end(data.subarray(1000));
  assert.equal((await response).statusCode, 202);
  const afterUpload = await waitFor("the upload to end", async () => {
    const s = await scrape();
    return s.get("corral_registry_uploads_in_flight") === 0 ? s : undefined;
  });
  const received = [...afterUpload.entries()].find(([k]) => k.startsWith("corral_registry_http_received_bytes_total{") && k.includes("/blobs/uploads/"));
  assert.ok(received && received[1] >= data.length, `received bytes on the upload route: ${received?.[1]}`);
  assert.ok((afterUpload.get("process_resident_memory_bytes") ?? 0) > 0);
  assert.ok((afterUpload.get("process_start_time_seconds") ?? 0) > 1.6e9);
});

test("SIGTERM: the listener closes, an upload in flight finishes, the process exits 0", async () => {
  const dir = await mkdtemp(join(tmpdir(), "corral-drain-"));
  const proc = await startRegistry({ REGISTRY_DATA: dir, REGISTRY_ADMIN_TOKEN: ADMIN, DATABASE_URL: "", S3_BUCKET: "", REGISTRY_SHUTDOWN_TIMEOUT: "30" });
  try {
    assert.equal((await fetch(`${proc.url}/admin/users`, { method: "POST", headers: { Authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ name: "ops" }) })).status, 201);
    const issued = (await (await fetch(`${proc.url}/admin/tokens`, { method: "POST", headers: { Authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ user: "ops", scopes: ["repository:ops/model:pull,push"] }) })).json()) as { token: string };
    const session = await startUpload(proc, issued.token);
    const data = randomBytes(512 * 1024);
    const { req, response } = streamingRequest(proc, "PATCH", session, { Authorization: `Bearer ${issued.token}`, "Content-Type": "application/octet-stream", "Content-Length": String(data.length) });
    req.write(data.subarray(0, 100_000));
    await uploadReached(proc);
    const exited = new Promise<number | null>((res) => proc.process.once("exit", (code) => res(code)));
    proc.process.kill("SIGTERM");
    await waitFor("shutdown to begin", () => (proc.logs().includes('"msg":"shutting down') ? true : undefined));
    await assert.rejects(fetch(`${proc.url}/healthz`), "no new connections are accepted");
    req.end(data.subarray(100_000));
    const res = await response;
    assert.equal(res.statusCode, 202, res.text);
    assert.equal(res.headers["range"], `0-${data.length - 1}`);
    assert.equal(res.headers["connection"], "close");
    assert.equal(await exited, 0);
    const stopped = logLines(proc).find((l) => l["msg"] === "stopped");
    assert.ok(stopped, "the process logs its end");
  } finally {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test("an upload cut off by the shutdown timeout resumes on the next process from its last chunk", async () => {
  const dir = await mkdtemp(join(tmpdir(), "corral-resume-"));
  const env = { REGISTRY_DATA: dir, REGISTRY_ADMIN_TOKEN: ADMIN, DATABASE_URL: "", S3_BUCKET: "", REGISTRY_SHUTDOWN_TIMEOUT: "1" };
  let proc = await startRegistry(env);
  try {
    const adminPost = async (p: RegistryProcess, path: string, body: unknown): Promise<Record<string, unknown>> =>
      (await (await fetch(`${p.url}/admin${path}`, { method: "POST", headers: { Authorization: `Bearer ${ADMIN}` }, body: JSON.stringify(body) })).json()) as Record<string, unknown>;
    await adminPost(proc, "/users", { name: "ops" });
    const auth = async (p: RegistryProcess): Promise<string> => `Bearer ${(await adminPost(p, "/tokens", { user: "ops", scopes: ["repository:ops/model:pull,push"] }))["token"]}`;
    let bearer = await auth(proc);
    const data = randomBytes(700_000);
    const cut = 300_000;
    const session = await startUpload(proc, bearer.slice("Bearer ".length));
    const first = await fetch(`${proc.url}${session}`, { method: "PATCH", headers: { Authorization: bearer, "Content-Range": `0-${cut - 1}` }, body: data.subarray(0, cut) });
    assert.equal(first.status, 202);
    // The second chunk starts and stalls; the process is told to stop and gives it one second.
    const { req, response } = streamingRequest(proc, "PATCH", session, { Authorization: bearer, "Content-Range": `${cut}-${data.length - 1}`, "Content-Length": String(data.length - cut) });
    req.write(data.subarray(cut, cut + 50_000));
    const failed = response.then(
      () => "answered",
      () => "cut off",
    );
    await uploadReached(proc);
    const exited = new Promise<number | null>((res) => proc.process.once("exit", (code) => res(code)));
    proc.process.kill("SIGTERM");
    // The chunk never completes, so only the shutdown timeout can end the process: that it exits
    // at all shows the timeout bounds the wait, and the log says it was the timeout.
    assert.equal(await exited, 0);
    assert.equal(await failed, "cut off");
    assert.ok(logLines(proc).some((l) => l["msg"]?.toString().startsWith("shutdown timeout") && l["abandoned"] === 1), proc.logs());

    proc = await startRegistry(env);
    bearer = await auth(proc);
    const status = await fetch(`${proc.url}${session}`, { headers: { Authorization: bearer } });
    assert.equal(status.status, 204);
    assert.equal(status.headers.get("range"), `0-${cut - 1}`, "the session kept the chunk that was accepted");
    const second = await fetch(`${proc.url}${session}`, { method: "PATCH", headers: { Authorization: bearer, "Content-Range": `${cut}-${data.length - 1}` }, body: data.subarray(cut) });
    assert.equal(second.status, 202, await second.text());
    const digest = sha256Bytes(data);
    const put = await fetch(`${proc.url}${session}?digest=${digest}`, { method: "PUT", headers: { Authorization: bearer } });
    assert.equal(put.status, 201, await put.text());
    const got = Buffer.from(await (await fetch(`${proc.url}/v2/ops/model/blobs/${digest}`, { headers: { Authorization: bearer } })).arrayBuffer());
    assert.equal(sha256Bytes(got), digest);
  } finally {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test("readiness fails while the blob store is unreachable; liveness does not", async () => {
  const s3 = await startS3("corral-ops");
  const dir = await mkdtemp(join(tmpdir(), "corral-ready-"));
  const proc = await startRegistry({ REGISTRY_DATA: dir, DATABASE_URL: "", ...s3.env });
  try {
    assert.equal((await fetch(`${proc.url}/readyz`)).status, 200);
    await s3.stop();
    await new Promise((res) => setTimeout(res, 1100)); // past the window in which checks are shared
    const res = await fetch(`${proc.url}/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { checks: { database: { ok: boolean }; blobs: { ok: boolean; error?: string } } };
    assert.equal(body.checks.database.ok, true);
    assert.equal(body.checks.blobs.ok, false);
    assert.ok(body.checks.blobs.error);
    assert.equal((await fetch(`${proc.url}/healthz`)).status, 200);
  } finally {
    await proc.stop();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
