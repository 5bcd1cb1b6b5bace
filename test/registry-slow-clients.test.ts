// A real `corral-registry serve` with a two-second REGISTRY_IDLE_TIMEOUT and REGISTRY_UPLOAD_TTL:
// an upload that sends its headers and then nothing is closed by the server; an upload that keeps
// sending small pieces for several timeout-lengths completes (and its session, receiving bytes, is
// not expired meanwhile); a keep-alive connection idle between requests stays open past the
// inactivity timeout; a session abandoned after one chunk is removed by serve's own sweep, its
// bytes with it.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256Bytes } from "@corral/shared/digest";
import { startRegistry, type RegistryProcess } from "./helpers/registry.ts";

const ADMIN = "slow-clients-admin-token";
const IDLE_SECONDS = 2;
const TTL_SECONDS = 2;
let dataDir: string;
let r: RegistryProcess;
let token: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "corral-slow-"));
  r = await startRegistry({
    REGISTRY_DATA: dataDir,
    REGISTRY_ADMIN_TOKEN: ADMIN,
    DATABASE_URL: "",
    S3_BUCKET: "",
    REGISTRY_IDLE_TIMEOUT: String(IDLE_SECONDS),
    REGISTRY_UPLOAD_TTL: String(TTL_SECONDS),
  });
  const admin = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${r.url}/admin${path}`, { method: "POST", headers: { Authorization: `Bearer ${ADMIN}` }, body: JSON.stringify(body) });
    assert.equal(res.status, 201, await res.clone().text());
    return (await res.json()) as Record<string, unknown>;
  };
  await admin("/users", { name: "slow" });
  token = (await admin("/tokens", { user: "slow", scopes: ["repository:slow/model:pull,push"] }))["token"] as string;
});

after(async () => {
  await r?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function startUpload(): Promise<string> {
  const res = await fetch(`${r.url}/v2/slow/model/blobs/uploads/`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 202, await res.text());
  return new URL(res.headers.get("location")!).pathname;
}

async function rawConnection(): Promise<Socket> {
  const [host, port] = r.host.split(":");
  const socket = connect(Number(port), host);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

test("an upload that sends its headers and then nothing is closed by the server", async () => {
  const session = await startUpload();
  const socket = await rawConnection();
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString()));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => {});
  socket.write(
    [`PATCH ${session} HTTP/1.1`, `Host: ${r.host}`, `Authorization: Bearer ${token}`, "Content-Type: application/octet-stream", "Content-Length: 100000", "", ""].join("\r\n"),
  );
  await closed;
  assert.doesNotMatch(received, /HTTP\/1\.1 202/, "the chunk was not accepted");
  assert.equal(socket.destroyed, true);
});

test("an upload sending small pieces for several timeout-lengths completes, and its session is not expired meanwhile", async () => {
  const session = await startUpload();
  const pieceMs = 100;
  const pieces = Math.ceil((3 * IDLE_SECONDS * 1000) / pieceMs);
  const data = randomBytes(pieces * 50);
  const [host, port] = r.host.split(":");
  const response = new Promise<{ status: number; range: string | undefined; text: string }>((resolve, reject) => {
    const req = httpRequest(
      {
        host,
        port: Number(port),
        method: "PATCH",
        path: session,
        agent: false,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/octet-stream", "Content-Length": String(data.length) },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, range: res.headers["range"] as string | undefined, text }));
      },
    );
    req.on("error", reject);
    (async () => {
      for (let i = 0; i < pieces; i++) {
        req.write(data.subarray(i * 50, (i + 1) * 50));
        await sleep(pieceMs);
      }
      req.end();
    })().catch(reject);
  });
  const res = await response;
  assert.equal(res.status, 202, res.text);
  assert.equal(res.range, `0-${data.length - 1}`);
  const put = await fetch(`${r.url}${session}?digest=${sha256Bytes(data)}`, { method: "PUT", headers: { Authorization: `Bearer ${token}` } });
  assert.equal(put.status, 201, await put.text());
});

test("a keep-alive connection idle between requests outlives the inactivity timeout", async () => {
  const socket = await rawConnection();
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString()));
  let closed = false;
  socket.once("close", () => (closed = true));
  const ask = async (): Promise<void> => {
    const before = received.length;
    socket.write(`GET /healthz HTTP/1.1\r\nHost: ${r.host}\r\n\r\n`);
    while (!/HTTP\/1\.1 200[\s\S]*\r\n\r\n/.test(received.slice(before)) && !closed) await sleep(20);
  };
  await ask();
  // Idle for twice the inactivity timeout, well inside the 65-second keep-alive.
  await sleep(2 * IDLE_SECONDS * 1000);
  assert.equal(closed, false, "the idle connection is still open");
  await ask();
  assert.equal(closed, false);
  assert.equal(received.match(/HTTP\/1\.1 200/g)?.length, 2, received);
  socket.destroy();
});

test("serve's sweep removes a session abandoned after its first chunk, and its bytes", async () => {
  const session = await startUpload();
  const id = session.split("/").pop()!;
  const chunk = await fetch(`${r.url}${session}`, { method: "PATCH", headers: { Authorization: `Bearer ${token}`, "Content-Range": "0-4999" }, body: randomBytes(5000) });
  assert.equal(chunk.status, 202);
  const file = join(dataDir, "storage", "uploads", id);
  assert.ok(existsSync(file), "the chunk is in the upload area");
  for (;;) {
    const status = await fetch(`${r.url}${session}`, { headers: { Authorization: `Bearer ${token}` } });
    await status.arrayBuffer();
    if (status.status === 404) break;
    assert.equal(status.status, 204);
    await sleep(200);
  }
  while (existsSync(file)) await sleep(50);
});
