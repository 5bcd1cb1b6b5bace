// Limits on what the registry client reads from a registry: bodies read within a byte limit while
// they stream (a manifest, a token response, an error message), oversized challenge headers, and
// the number of parts a download of any declared size is cut into. Real sockets, no mocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, get, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readAtMost, readPrefix } from "../src/registry-client/bounded-read.ts";
import { bodyText } from "../src/registry-client/bulk-http.ts";
import { MAX_CHALLENGE_LENGTH, parseChallenge } from "../src/registry-client/challenge.ts";
import { loadConfig } from "../src/config.ts";
import { MAX_RANGES, planRanges } from "../src/registry-client/parts.ts";
import { writable } from "../../../test/helpers/http.ts";

/** A server that streams `chunk` until the client goes away or `max` bytes went out; `sent()` says how many did. */
async function endless(max = 256 << 20): Promise<{ url: string; sent: () => number; closed: Promise<void>; close: () => void }> {
  let sent = 0;
  let closed!: () => void;
  const whenClosed = new Promise<void>((r) => (closed = r));
  const chunk = Buffer.alloc(64 << 10, "x");
  const server = createServer(async (_req, res: ServerResponse) => {
    res.on("close", closed);
    res.writeHead(200, { "Content-Type": "application/octet-stream" });
    while (sent < max && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) await writable(res);
    }
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    sent: () => sent,
    closed: whenClosed,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test("readAtMost fails with a clear message past its limit and stops reading an endless body", async () => {
  const s = await endless();
  try {
    const res = await fetch(s.url);
    await assert.rejects(readAtMost(res.body, 1 << 20, "a manifest"), /^RegistryError: the registry sent a manifest of more than 1048576 bytes$/);
    await s.closed;
    assert.ok(s.sent() < 64 << 20, `the server got to send ${s.sent()} bytes`);
  } finally {
    s.close();
  }
});

test("readAtMost returns a body of exactly its limit, and an absent body as empty", async () => {
  const server = createServer((_req, res) => res.end(Buffer.alloc(1000, "a")));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    assert.equal((await readAtMost(res.body, 1000, "a body")).length, 1000);
    assert.equal((await readAtMost(null, 10, "nothing")).length, 0);
  } finally {
    server.close();
  }
});

test("error bodies: only their beginning is read, over fetch and over node:http", async () => {
  const s = await endless();
  try {
    const text = await readPrefix((await fetch(s.url)).body, 1000);
    assert.equal(text, "x".repeat(1000));
    const res = await new Promise<import("node:http").IncomingMessage>((resolve, reject) => get(s.url, resolve).once("error", reject));
    assert.equal((await bodyText(res)).length, 64 << 10);
    await s.closed;
    assert.ok(s.sent() < 64 << 20, `the server got to send ${s.sent()} bytes`);
  } finally {
    s.close();
  }
});

test("a WWW-Authenticate header longer than any real challenge is refused", () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://r.example/token",service="r.example",scope="repository:a/b:pull"'), {
    realm: "https://r.example/token",
    service: "r.example",
    scope: "repository:a/b:pull",
  });
  assert.throws(() => parseChallenge(`Bearer realm="https://r.example/token",scope="${"a".repeat(MAX_CHALLENGE_LENGTH)}"`), /WWW-Authenticate header of \d+ characters, more than the 8192 allowed/);
});

test("a download is cut into at most MAX_RANGES parts, whatever size is declared, and the parts tile it", () => {
  for (const [total, env] of [
    [2 ** 40, {}],
    [2 ** 50, {}],
    [Number.MAX_SAFE_INTEGER, {}],
    [2 ** 30, { CORRAL_TRANSFER_PART_MIN: "1" }],
  ] as Array<[number, NodeJS.ProcessEnv]>) {
    const parts = planRanges(total, loadConfig(env));
    assert.ok(parts.length <= MAX_RANGES, `${total} bytes in ${parts.length} parts`);
    let offset = 0;
    for (const [i, p] of parts.entries()) {
      assert.equal(p.n, i);
      assert.equal(p.offset, offset);
      assert.ok(p.size > 0);
      offset += p.size;
    }
    assert.equal(offset, total);
  }
  // Sizes below the bound are cut as before.
  assert.equal(planRanges(1_200_000, loadConfig({ CORRAL_TRANSFER_PART_MIN: String(128 << 10) })).length, 10);
  // 16 MiB parts, so that what the streams have in flight fits the hash window, up to MAX_RANGES of them.
  assert.deepEqual(new Set(planRanges(4 * 2 ** 30, loadConfig({})).map((p) => p.size)), new Set([16 << 20]));
  assert.equal(planRanges(8 * 2 ** 30, loadConfig({})).length, 512);
  assert.equal(planRanges(64 * 2 ** 30, loadConfig({})).length, MAX_RANGES);
});
