// The inactivity timeout on a real node:http server: the connection is closed when the client is
// the one that went silent (a body that stops arriving, a response it stops reading) and kept when
// the server is the one still working (an answer that takes longer than the timeout, received
// bytes a slow handler has not taken yet).

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { closeIdleConnections } from "../src/ops/idle-connections.ts";

const IDLE_MS = 300;
/** How long the server keeps the client waiting in the cases where it must not be cut. */
const WORK_MS = 4 * IDLE_MS;

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  server = createServer(handler);
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  closeIdleConnections(server, IDLE_MS);
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

async function drain(req: IncomingMessage): Promise<number> {
  let n = 0;
  for await (const chunk of req) n += (chunk as Buffer).length;
  return n;
}

function post(port: number, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: "127.0.0.1", method: "POST", path: "/", agent: false, headers: { "Content-Length": String(body.length) } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("a body that stops arriving is cut", async () => {
  let serverSide: Socket | undefined;
  const port = await serve((req) => {
    serverSide = req.socket;
    drain(req).catch(() => {});
  });
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nfirst bytes, then nothing");
  await closed;
  assert.ok(serverSide?.destroyed, "the server closed it");
});

test("an answer that takes longer than the timeout, after the whole body arrived, is not cut", async () => {
  const port = await serve(async (req, res) => {
    const n = await drain(req);
    await sleep(WORK_MS);
    res.end(`got ${n}`);
  });
  assert.deepEqual(await post(port, Buffer.alloc(1000)), { status: 200, text: "got 1000" });
});

test("received bytes waiting for a slow handler keep the connection", async () => {
  const body = Buffer.alloc(16 << 20);
  const port = await serve(async (req, res) => {
    // Nothing is read for a while: the body backs up in the socket, and the client cannot send more.
    await sleep(WORK_MS);
    res.end(`got ${await drain(req)}`);
  });
  assert.deepEqual(await post(port, body), { status: 200, text: `got ${body.length}` });
});

test("a response the client stops reading is cut", async () => {
  const closed = new Promise<void>((resolve) => {
    void serve((req, res) => {
      res.once("close", () => resolve());
      res.writeHead(200, { "Content-Type": "application/octet-stream" });
      const chunk = Buffer.alloc(1 << 20);
      const more = (): void => {
        while (res.write(chunk));
        res.once("drain", more);
      };
      more();
    }).then((port) => {
      const socket = connect(port, "127.0.0.1");
      socket.on("error", () => {});
      socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      // Reads the first bytes, then nothing more.
      socket.once("data", () => socket.pause());
    });
  });
  await closed;
});
