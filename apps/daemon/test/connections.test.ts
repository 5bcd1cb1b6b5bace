// Connections that outlive clients' pools. Pooled clients keep an idle connection and send their
// next request on it; a daemon that closed it meanwhile makes that request fail ("other side
// closed", EOF). Against a real `corral serve`, three kinds of client go idle for 6 s (longer than
// Node's default 5 s keep-alive) and then POST on the connection they kept: node:http's keep-alive
// Agent, the `ollama` npm client (undici, through the global fetch), and a client that does not
// watch its idle connections at all, as Go's http.Transport does not. Uploads are not cut by a
// whole-request deadline, only when their bytes stop coming.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Agent, request as httpRequest, type IncomingMessage } from "node:http";
import { connect, createServer as createTCPServer, type Server as TCPServer, type Socket } from "node:net";
import { Hono } from "hono";
import type { HttpBindings } from "@hono/node-server";
import { Ollama } from "ollama";
import { startDaemon, uploadFile, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { createHTTPServer, KEEP_ALIVE_TIMEOUT_MS } from "../src/api/http-server.ts";

/** Longer than Node's default keep-alive (5 s): the idle time the clients below must survive. */
const IDLE_MS = 6_000;
const idle = (): Promise<void> => new Promise((r) => setTimeout(r, IDLE_MS));

let daemon: Daemon;
/** A TCP relay in front of the daemon that counts the connections clients open through it. */
let relay: TCPServer;
let relayURL: string;
let relayConnections = 0;
const relaySockets = new Set<Socket>();

before(async () => {
  daemon = await startDaemon();
  const digest = await uploadFile(daemon, fixtures.stories260K);
  const created = await fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify({ model: "story", files: { "stories260K.gguf": digest }, stream: false }) });
  assert.equal(created.status, 200, await created.text());
  const target = new URL(daemon.url);
  relay = createTCPServer((client) => {
    relayConnections++;
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      relaySockets.add(s);
      s.once("close", () => relaySockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  const addr = relay.address();
  relayURL = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});

after(async () => {
  // The pools would keep their connections for the two minutes the daemon now allows.
  for (const s of relaySockets) s.destroy();
  await new Promise<void>((r) => (relay ? relay.close(() => r()) : r()));
  await daemon?.stop();
});

function agentRequest(agent: Agent, method: string, path: string, body?: string): Promise<{ status: number; reused: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)) };
    const req = httpRequest(`${daemon.url}${path}`, { method, agent, headers }, (res: IncomingMessage) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Reads one HTTP/1.1 response (Content-Length or chunked) from a socket; rejects if the daemon hangs up. */
function readResponse(socket: Socket): Promise<string> {
  if (socket.readableEnded || socket.destroyed) return Promise.reject(new Error("the daemon had closed the connection"));
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error, text?: string) => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
      socket.off("error", onError);
      if (err) reject(err);
      else resolve(text!);
    };
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const text = buf.toString("latin1");
      const head = text.indexOf("\r\n\r\n");
      if (head < 0) return;
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, head));
      if (length ? buf.length >= head + 4 + Number(length[1]) : text.endsWith("\r\n0\r\n\r\n")) done(undefined, text);
    };
    const onEnd = () => done(new Error(`the daemon closed the connection (read so far: ${JSON.stringify(buf.toString())})`));
    const onError = (e: Error) => done(new Error(`the connection failed: ${e.message}`));
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("close", onEnd);
    socket.on("error", onError);
  });
}

test("the daemon tells clients it keeps idle connections for 120 s", async () => {
  const r = await fetch(`${daemon.url}/api/version`);
  await r.text();
  assert.equal(r.headers.get("keep-alive"), `timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}`);
  assert.ok(KEEP_ALIVE_TIMEOUT_MS > 90_000, "longer than Go's 90 s idle pool");
});

test("pooled clients POST on a connection that sat idle for 6 s", { concurrency: true }, async (t) => {
  await Promise.all([
    t.test("node:http Agent with keepAlive", async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        assert.equal((await agentRequest(agent, "GET", "/api/version")).status, 200);
        await idle();
        const r = await agentRequest(agent, "POST", "/api/show", JSON.stringify({ model: "story" }));
        assert.equal(r.status, 200, r.body);
        assert.equal(r.reused, true, "the POST went out on the connection kept from the first request");
      } finally {
        agent.destroy();
      }
    }),
    t.test("the ollama npm client (undici)", async () => {
      const ollama = new Ollama({ host: relayURL });
      assert.match((await ollama.version()).version, /^\d/);
      await idle();
      const copied = await ollama.copy({ source: "story", destination: "pooled-copy" });
      assert.equal(copied.status, "success");
      assert.equal(relayConnections, 1, "both requests used one connection");
      assert.ok((await ollama.list()).models.some((m) => m.name === "pooled-copy:latest"));
    }),
    t.test("a client that does not watch its idle connections (as Go's transport)", async () => {
      const socket = connect(Number(new URL(daemon.url).port), "127.0.0.1");
      socket.on("error", () => {}); // reported by readResponse, which also sees the connection close
      try {
        socket.write(`GET /api/version HTTP/1.1\r\nHost: ${daemon.host}\r\n\r\n`);
        assert.match(await readResponse(socket), /^HTTP\/1\.1 200 /);
        await idle();
        const body = JSON.stringify({ model: "story" });
        const answer = readResponse(socket);
        socket.write(`POST /api/show HTTP/1.1\r\nHost: ${daemon.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        assert.match(await answer, /^HTTP\/1\.1 200 /);
      } finally {
        socket.destroy();
      }
    }),
  ]);
});

/**
 * A server like the daemon's, in this process, with a short body-idle limit. Its handler takes the
 * body at once, or (`stall`) stops after the first chunk until the connection has sat idle past
 * the limit, as a handler writing to a slow disk would.
 */
async function uploadServer(bodyIdleMs: number, stall: boolean): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.post("/upload", async (c) => {
    const socket = c.env.incoming.socket;
    const reader = c.req.raw.body!.getReader();
    let bytes = 0;
    try {
      for (let first = true; ; first = false) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.length;
        if (first && stall) {
          await new Promise((r) => socket.once("timeout", r));
          // Past the poll that follows the timeout, where the server decides.
          await new Promise((r) => setImmediate(r));
          await new Promise((r) => setImmediate(r));
        }
      }
    } catch {
      seen.push(`body failed after ${bytes} bytes`);
      return c.body(null, 400);
    }
    seen.push(`body complete: ${bytes} bytes`);
    return c.text(String(bytes));
  });
  const server = createHTTPServer(app.fetch, { hostname: "127.0.0.1", port: 0, bodyIdleMs });
  await new Promise<void>((r) => server.once("listening", () => r()));
  const addr = server.address();
  assert.equal(server.requestTimeout, 0, "no deadline for a whole request");
  assert.ok(server.headersTimeout > server.keepAliveTimeout);
  return {
    url: `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`,
    seen,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

test("an upload whose client stops sending is cut after the idle limit", async () => {
  const server = await uploadServer(200, false);
  try {
    const socket = connect(Number(new URL(server.url).port), "127.0.0.1");
    socket.write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    socket.write(Buffer.alloc(1000));
    socket.resume();
    // Nothing more is sent: the server must hang up by itself.
    await new Promise((r) => socket.once("close", r));
    while (server.seen.length === 0) await new Promise((r) => setImmediate(r));
    assert.deepEqual(server.seen, ["body failed after 1000 bytes"]);
  } finally {
    await server.close();
  }
});

test("an upload the daemon is slow to take (backpressure) is not cut when the idle limit passes", async () => {
  const server = await uploadServer(200, true);
  try {
    const body = Buffer.alloc(16 << 20);
    const r = await fetch(`${server.url}/upload`, { method: "POST", body });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), String(body.length));
    assert.deepEqual(server.seen, [`body complete: ${body.length} bytes`]);
  } finally {
    await server.close();
  }
});
