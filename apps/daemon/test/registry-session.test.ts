// Where the registry session sends its token and whom it signs token requests for, against real
// HTTP servers: the registry the model names (H) and another host (T) that H sends the daemon to.
// The token goes only to H, a 401 from T is an error naming both hosts, and a realm off H is
// never asked for a token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { generateKeyPair } from "@corral/shared/signing";
import { ModelName } from "@corral/shared/name";
import { RegistrySession, ForeignCredentialsError } from "../src/registry-client/session.ts";
import { readPrefix } from "../src/registry-client/bounded-read.ts";
import { signerFor } from "../src/identity.ts";

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
}

async function site(handle: (req: IncomingMessage, res: ServerResponse, host: string) => void): Promise<{ host: string; seen: Seen[]; close(): void }> {
  const seen: Seen[] = [];
  let host = "";
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, path: new URL(req.url!, "http://x").pathname, authorization: req.headers.authorization });
    req.resume();
    req.on("end", () => handle(req, res, host));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    seen,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const signer = signerFor(generateKeyPair());

/** A registry that wants `Bearer h-token` and hands it to any token request. */
function ownRegistry(next: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse, host: string): void => {
    if (req.url!.startsWith("/token")) return void res.writeHead(200, { "Content-Type": "application/json" }).end('{"token":"h-token"}');
    if (req.headers.authorization !== "Bearer h-token") {
      return void res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${host}/token",service="${host}",scope="repository:team/story:pull"` }).end();
    }
    next(req, res);
  };
}

test("isRegistry: the model's registry by scheme, host and port; --insecure makes its https URLs http", () => {
  const s = new RegistrySession(ModelName.parse("reg.example:5000/team/story"), true, undefined);
  assert.equal(s.isRegistry("http://reg.example:5000/v2/x"), true);
  assert.equal(s.isRegistry("https://reg.example:5000/v2/x"), true);
  assert.equal(s.isRegistry("http://reg.example:5001/v2/x"), false);
  assert.equal(s.isRegistry("http://other.example:5000/v2/x"), false);
  const secure = new RegistrySession(ModelName.parse("reg.example/team/story"), false, undefined);
  assert.equal(secure.isRegistry("https://reg.example/v2/x"), true);
  assert.equal(secure.isRegistry("https://reg.example:443/v2/x"), true);
  assert.equal(secure.isRegistry("http://reg.example/v2/x"), false, "a plain-HTTP URL is not where an https registry's token goes");
  assert.equal(secure.isRegistry("/v2/relative"), true, "a relative URL is on the registry");
  assert.equal(secure.isRegistry("http://[not a host"), false);
});

test("a redirect to another host gets no token, and its 401 is an error naming both hosts, with no token request sent there", async () => {
  const t = await site((_req, res, host) => {
    res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${host}/token",service="${host}"` }).end();
  });
  const h = await site(ownRegistry((_req, res) => void res.writeHead(307, { Location: `http://${t.host}/v2/team/private/manifests/latest` }).end()));
  try {
    const s = new RegistrySession(ModelName.parse(`${h.host}/team/story`), true, signer);
    const err = await s.request("GET", s.url("/manifests/latest")).then(
      () => assert.fail("the request succeeded"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ForeignCredentialsError, String(err));
    assert.equal(err.message, `registry ${h.host} sent this request to ${t.host}, which asks for credentials; Corral signs token requests only for ${h.host}`);
    assert.ok(h.seen.some((r) => r.path === "/token"), "the registry itself was asked for a token");
    assert.deepEqual(t.seen.map((r) => [r.path, r.authorization]), [["/v2/team/private/manifests/latest", undefined]]);
  } finally {
    h.close();
    t.close();
  }
});

test("a redirect to another host that answers is followed without the token; a 303 of a POST becomes a GET", async () => {
  const t = await site((req, res) => void res.writeHead(200).end(`${req.method} ok`));
  const h = await site(ownRegistry((req, res) => void res.writeHead(req.method === "POST" ? 303 : 307, { Location: `http://${t.host}/elsewhere` }).end()));
  try {
    const s = new RegistrySession(ModelName.parse(`${h.host}/team/story`), true, signer);
    assert.equal(await readPrefix((await s.request("GET", s.url("/manifests/latest"))).body), "GET ok");
    assert.equal(await readPrefix((await s.request("POST", s.url("/blobs/uploads/"), { body: () => Buffer.from("x") })).body), "GET ok");
    assert.deepEqual(t.seen.map((r) => r.authorization), [undefined, undefined]);
  } finally {
    h.close();
    t.close();
  }
});

test("a 401 from an upload Location on another host, is the same error; the PATCH carried no token", async () => {
  const t = await site((_req, res, host) => void res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${host}/token"` }).end());
  const h = await site(ownRegistry((_req, res) => void res.writeHead(404).end()));
  try {
    const s = new RegistrySession(ModelName.parse(`${h.host}/team/story`), true, signer);
    await assert.rejects(s.request("HEAD", s.url("/blobs/sha256:00")), /file does not exist/);
    await assert.rejects(
      s.request("PATCH", `http://${t.host}/v2/team/private/blobs/uploads/u1`, { headers: { "Content-Length": "1" }, body: () => async (req) => void req.end("x"), redirect: "manual" }),
      new RegExp(`^ForeignCredentialsError: registry ${h.host} sent this request to ${t.host}, which asks for credentials`),
    );
    assert.deepEqual(t.seen.map((r) => [r.method, r.authorization]), [["PATCH", undefined]]);
  } finally {
    h.close();
    t.close();
  }
});

test("a realm on another host is never asked for a token", async () => {
  const t = await site((_req, res) => void res.writeHead(200, { "Content-Type": "application/json" }).end('{"token":"t-token"}'));
  const h = await site((_req, res) => void res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${t.host}/token",service="x"` }).end());
  try {
    const s = new RegistrySession(ModelName.parse(`${h.host}/team/story`), true, signer);
    await assert.rejects(s.request("GET", s.url("/manifests/latest")), new RegExp(`^ForeignCredentialsError: registry ${h.host} asks for a token from ${t.host}; Corral signs token requests only for ${h.host}$`));
    assert.deepEqual(t.seen, []);
  } finally {
    h.close();
    t.close();
  }
});

test("a token response is read within its limit", async () => {
  const h = await site((req, res, host) => {
    if (req.url!.startsWith("/token")) {
      res.writeHead(200, { "Content-Type": "application/json" });
      // Two megabytes of token, sent without a length.
      res.write('{"token":"');
      for (let i = 0; i < 32; i++) res.write("a".repeat(64 << 10));
      return void res.end('"}');
    }
    res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${host}/token"` }).end();
  });
  try {
    const s = new RegistrySession(ModelName.parse(`${h.host}/team/story`), true, signer);
    await assert.rejects(s.request("GET", s.url("/manifests/latest")), /the registry sent a token response of more than 1048576 bytes/);
  } finally {
    h.close();
  }
});

test("a push asks once for push,pull when side-by-side requests meet the pull challenge; a pull asks for what the challenge names", async () => {
  const scopes: string[] = [];
  // Answers only once both HEADs are in, so that both meet the 401 before any token exists.
  let heads = 0;
  const waiting: Array<() => void> = [];
  const h = await site((req, res, host) => {
    const u = new URL(req.url!, "http://x");
    if (u.pathname === "/token") {
      const scope = u.searchParams.getAll("scope").join(" ");
      scopes.push(scope);
      return void res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token: scope }));
    }
    const token = req.headers.authorization?.replace(/^Bearer /, "") ?? "";
    const needs = req.method === "POST" ? "push" : "pull";
    if (!token.split(":").pop()!.split(",").includes(needs)) {
      const challenge = () => res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${host}/token",service="${host}",scope="repository:team/story:${needs}"` }).end();
      if (req.method !== "HEAD" || ++heads > 2) return challenge();
      waiting.push(challenge);
      if (waiting.length === 2) for (const w of waiting.splice(0)) w();
      return;
    }
    res.writeHead(req.method === "POST" ? 202 : 404, { Location: "/v2/team/story/blobs/uploads/u1" }).end();
  });
  try {
    const push = new RegistrySession(ModelName.parse(`${h.host}/team/story`), true, signer, "push");
    const heads = [push.request("HEAD", push.url("/blobs/sha256:aa")), push.request("HEAD", push.url("/blobs/sha256:bb"))];
    for (const r of await Promise.allSettled(heads)) assert.equal(r.status, "rejected");
    const started = await push.request("POST", push.url("/blobs/uploads/"), { accept: [202] });
    started.discard();
    assert.equal(started.status, 202);
    assert.deepEqual(scopes, ["repository:team/story:push,pull"]);

    scopes.length = 0;
    const pull = new RegistrySession(ModelName.parse(`${h.host}/team/story`), true, signer);
    await assert.rejects(pull.request("HEAD", pull.url("/blobs/sha256:cc")));
    assert.deepEqual(scopes, ["repository:team/story:pull"]);
  } finally {
    h.close();
  }
});
