// Which web pages may drive the daemon. A real `corral serve` refuses with 403, before it does
// anything, every request whose Origin is not on the allow-list (CORRAL_ORIGINS, else
// OLLAMA_ORIGINS, plus the local defaults); it answers CORS preflights only for allowed origins and
// lets clients that send no Origin (CLIs, servers, SDKs) through unchanged. Requests go out through
// node:http so that Origin and Host are exactly what a browser, or a rebinding page, would send.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest, createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { sha256Bytes } from "@corral/shared/digest";
import { startDaemon, uploadFile, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { loadConfig } from "../src/config.ts";
import { originMatcher, unusableOrigins } from "../src/api/origin-check.ts";

const EVIL = "https://evil.example";

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection, with exactly the headers given (Host included). */
function send(base: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer | undefined } = {}): Promise<Reply> {
  const { headers = {}, body } = opts;
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    // node:http sends a DELETE body without framing unless told its length.
    const framing = body === undefined ? {} : { "Content-Length": String(Buffer.byteLength(body)) };
    let answered = false;
    const req = httpRequest({ host: u.hostname, port: u.port, method, path: u.pathname, headers: { ...framing, ...headers }, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    // A server that refuses a request before reading its body may close the connection while the
    // body is still being sent (HTTP allows it): the client's write then fails with EPIPE or
    // ECONNRESET, and the answer it already received is what counts.
    let failure: Error | undefined;
    req.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE" || e.code === "ECONNRESET") failure = e;
      else reject(e);
    });
    req.on("close", () => {
      if (failure && !answered) reject(failure);
    });
    req.end(body);
  });
}

let daemon: Daemon;
/** A registry that must never hear from the daemon on a hostile page's behalf. */
let registry: Server;
let registryHits: string[] = [];
let registryHost: string;

async function modelNames(): Promise<string[]> {
  const r = await send(daemon.url, "GET", "/api/tags");
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { models: Array<{ name: string }> }).models.map((m) => m.name).sort();
}

async function blobFiles(): Promise<string[]> {
  return (await readdir(join(daemon.modelsDir, "blobs"))).sort();
}

async function loadedModels(): Promise<string[]> {
  const r = await send(daemon.url, "GET", "/api/ps");
  return (JSON.parse(r.body) as { models: Array<{ name: string }> }).models.map((m) => m.name);
}

before(async () => {
  registry = createServer((req, res) => {
    registryHits.push(`${req.method} ${req.url}`);
    res.writeHead(404, { "Content-Type": "application/json" }).end('{"errors":[{"code":"NAME_UNKNOWN"}]}');
  });
  await new Promise<void>((r) => registry.listen(0, "127.0.0.1", r));
  const addr = registry.address();
  registryHost = `127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;

  daemon = await startDaemon({ env: { CORRAL_ORIGINS: "", OLLAMA_ORIGINS: "" } });
  const digest = await uploadFile(daemon, fixtures.stories260K);
  const created = await send(daemon.url, "POST", "/api/create", { body: JSON.stringify({ model: "story", files: { "stories260K.gguf": digest }, template: "{{ .Prompt }}", stream: false }) });
  assert.equal(created.status, 200, created.body);
  // A model named for the hostile registry, so that a push would really go out.
  const copied = await send(daemon.url, "POST", "/api/copy", { body: JSON.stringify({ source: "story", destination: `${registryHost}/evil/story` }) });
  assert.equal(copied.status, 200, copied.body);
  registryHits = [];
});

after(async () => {
  await daemon?.stop();
  await new Promise<void>((r) => (registry ? registry.close(() => r()) : r()));
});

/** Every route, with a body that would do something if it ran. */
function everyRoute(): Array<[method: string, path: string, body?: unknown]> {
  const chat = { model: "story", messages: [{ role: "user", content: "Once upon a time" }], stream: false, options: { num_predict: 1 } };
  return [
    ["POST", "/api/copy", { source: "story", destination: "evil-copy" }],
    ["DELETE", "/api/delete", { model: "story" }],
    ["POST", "/api/create", { model: "evil-created", from: "story", stream: false }],
    ["POST", "/api/pull", { model: `${registryHost}/evil/model`, insecure: true, stream: false }],
    ["POST", "/api/push", { model: `${registryHost}/evil/story`, insecure: true, stream: false }],
    ["POST", "/api/generate", { model: "story", prompt: "Once upon a time", stream: false, options: { num_predict: 1 } }],
    ["POST", "/api/chat", chat],
    ["POST", "/api/embed", { model: "story", input: "Once upon a time" }],
    ["POST", "/api/embeddings", { model: "story", prompt: "Once upon a time" }],
    ["POST", "/api/show", { model: "story" }],
    ["POST", "/v1/chat/completions", { model: "story", messages: chat.messages, max_tokens: 1 }],
    ["POST", "/v1/completions", { model: "story", prompt: "Once upon a time", max_tokens: 1 }],
    ["POST", "/v1/embeddings", { model: "story", input: "Once upon a time" }],
    ["GET", "/api/tags"],
    ["GET", "/api/ps"],
    ["GET", "/api/version"],
    ["GET", "/v1/models"],
    ["GET", "/"],
  ];
}

test("a disallowed Origin is refused with 403 on every route, and nothing happens", async () => {
  const models = await modelNames();
  const blobs = await blobFiles();
  for (const [method, path, body] of everyRoute()) {
    const headers: Record<string, string> = { Origin: EVIL };
    if (body !== undefined) headers["Content-Type"] = "text/plain";
    const r = await send(daemon.url, method, path, { headers, body: body === undefined ? undefined : JSON.stringify(body) });
    assert.equal(r.status, 403, `${method} ${path} from ${EVIL}: ${r.status} ${r.body}`);
    assert.equal(r.headers["access-control-allow-origin"], undefined, `${method} ${path}: no CORS grant`);
  }
  assert.deepEqual(await modelNames(), models, "no model was copied, created or deleted");
  assert.deepEqual(await blobFiles(), blobs, "no blob was written");
  assert.deepEqual(await loadedModels(), [], "no model was loaded to generate, chat or embed");
  assert.deepEqual(registryHits, [], "the daemon never contacted the hostile registry");
});

test("a blob upload from a disallowed Origin leaves no blob", async () => {
  const bytes = randomBytes(1 << 20);
  const digest = sha256Bytes(bytes);
  const before = await blobFiles();
  const r = await send(daemon.url, "POST", `/api/blobs/${digest}`, { headers: { Origin: EVIL, "Content-Type": "text/plain" }, body: bytes });
  assert.equal(r.status, 403, r.body);
  assert.deepEqual(await blobFiles(), before);
  assert.equal((await send(daemon.url, "HEAD", `/api/blobs/${digest}`)).status, 404);
});

test("the refusal says what to do", async () => {
  const r = await send(daemon.url, "POST", "/api/show", { headers: { Origin: EVIL, "Content-Type": "text/plain" }, body: '{"model":"story"}' });
  assert.equal(r.status, 403);
  assert.match(JSON.parse(r.body).error, /origin .*not allowed.*CORRAL_ORIGINS/);
});

test("a CORS preflight from an allowed origin gets 204 and the CORS headers", async () => {
  const origin = "http://localhost:3000";
  const r = await send(daemon.url, "OPTIONS", "/api/chat", {
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type,authorization,x-stainless-os",
    },
  });
  assert.equal(r.status, 204, r.body);
  assert.equal(r.headers["access-control-allow-origin"], origin);
  assert.match(String(r.headers["access-control-allow-methods"]), /\bPOST\b/);
  assert.match(String(r.headers["access-control-allow-methods"]), /\bDELETE\b/);
  const allowHeaders = String(r.headers["access-control-allow-headers"]).toLowerCase().split(",");
  for (const h of ["content-type", "authorization", "x-stainless-os"]) assert.ok(allowHeaders.includes(h), `${h} in ${allowHeaders.join(",")}`);
  assert.match(String(r.headers["vary"]), /\bOrigin\b/);
});

test("a CORS preflight from a disallowed origin gets 403 and no CORS headers", async () => {
  const r = await send(daemon.url, "OPTIONS", "/api/copy", { headers: { Origin: EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" } });
  assert.equal(r.status, 403);
  assert.equal(r.headers["access-control-allow-origin"], undefined);
  assert.equal(r.headers["access-control-allow-methods"], undefined);
});

test("a page on http://localhost:3000 may call the API and read the answer", async () => {
  const origin = "http://localhost:3000";
  const show = await send(daemon.url, "POST", "/api/show", { headers: { Origin: origin, "Content-Type": "application/json" }, body: '{"model":"story"}' });
  assert.equal(show.status, 200, show.body);
  assert.equal(show.headers["access-control-allow-origin"], origin);
  assert.match(String(show.headers["vary"]), /\bOrigin\b/);
  const tags = await send(daemon.url, "GET", "/api/tags", { headers: { Origin: origin } });
  assert.equal(tags.status, 200);
  assert.equal(tags.headers["access-control-allow-origin"], origin);
  // A streamed answer carries the grant too.
  const body = JSON.stringify({ model: "story", prompt: "Once upon a time", options: { num_predict: 2 } });
  const generated = await send(daemon.url, "POST", "/api/generate", { headers: { Origin: origin, "Content-Type": "application/json" }, body });
  assert.equal(generated.status, 200, generated.body);
  assert.equal(generated.headers["access-control-allow-origin"], origin);
  assert.match(generated.headers["content-type"] ?? "", /ndjson/);
  assert.equal(JSON.parse(generated.body.trim().split("\n").at(-1)!).done, true);
});

test("clients that send no Origin are unaffected", async () => {
  const copied = await send(daemon.url, "POST", "/api/copy", { headers: { "Content-Type": "application/json" }, body: JSON.stringify({ source: "story", destination: "cli-copy" }) });
  assert.equal(copied.status, 200, copied.body);
  assert.equal(copied.headers["access-control-allow-origin"], undefined);
  assert.ok((await modelNames()).includes("cli-copy:latest"));
  const deleted = await send(daemon.url, "DELETE", "/api/delete", { body: JSON.stringify({ model: "cli-copy" }) });
  assert.equal(deleted.status, 200, deleted.body);
});

test("on 0.0.0.0, a page served under the daemon's own Host (DNS rebinding) is refused; OLLAMA_ORIGINS is honoured and its typos reported", async () => {
  const open = await startDaemon({ env: { CORRAL_HOST: "0.0.0.0:0", CORRAL_ORIGINS: "", OLLAMA_ORIGINS: "http://allowed.example, https://*.corp.example, typo.example" } });
  try {
    const port = new URL(open.url).port;
    // The rebinding page: its name now points at this machine, so Origin and Host agree.
    const host = `rebind.example:${port}`;
    const rebound = await send(open.url, "POST", "/api/copy", { headers: { Host: host, Origin: `http://${host}`, "Content-Type": "text/plain" }, body: '{"source":"a","destination":"b"}' });
    assert.equal(rebound.status, 403, rebound.body);
    const listed = await send(open.url, "GET", "/api/tags", { headers: { Host: host, Origin: `http://${host}` } });
    assert.equal(listed.status, 403, listed.body);
    for (const origin of ["http://allowed.example", "https://app.corp.example"]) {
      const r = await send(open.url, "GET", "/api/tags", { headers: { Origin: origin } });
      assert.equal(r.status, 200, `${origin}: ${r.body}`);
      assert.equal(r.headers["access-control-allow-origin"], origin);
    }
    assert.equal((await send(open.url, "GET", "/api/tags", { headers: { Origin: "https://corp.example.evil.example" } })).status, 403);
    assert.match(open.logs(), /origin "typo\.example" in CORRAL_ORIGINS \(or OLLAMA_ORIGINS\) can never match: .*http:\/\/typo\.example/);
  } finally {
    await open.stop();
  }
});

test("the allow-list: Ollama's defaults (and [::1]) on any port, over http and https", () => {
  const allows = originMatcher(loadConfig({}).origins);
  for (const o of [
    "http://localhost",
    "https://localhost",
    "http://localhost:3000",
    "https://127.0.0.1:8443",
    "http://0.0.0.0:11434",
    "http://[::1]",
    "http://[::1]:5173",
    "app://obsidian.md",
    "file://",
    "tauri://localhost",
    "vscode-webview://1f2e3d",
    "vscode-file://vscode-app",
  ])
    assert.ok(allows(o), `${o} is allowed by default`);
  for (const o of [
    EVIL,
    "null",
    "http://localhost.evil.example",
    "http://localhostevil.example",
    "http://attacker.localhost:3000",
    "http://127.0.0.1.nip.io",
    "http://127.0.0.2:3000",
    "http://[::2]:3000",
    "ftp://localhost",
    "chrome-extension://abcdef",
  ])
    assert.ok(!allows(o), `${o} is refused by default`);
});

test("the allow-list: CORRAL_ORIGINS, else OLLAMA_ORIGINS, with * wildcards, added to the defaults", () => {
  const origins = (env: NodeJS.ProcessEnv) => loadConfig(env).origins;
  const corp = originMatcher(origins({ CORRAL_ORIGINS: " https://*.corp.example , HTTP://Intranet:8080 ", OLLAMA_ORIGINS: "http://ollama.example" }));
  assert.ok(corp("https://app.corp.example"));
  assert.ok(corp("https://a.b.corp.example"));
  assert.ok(corp("http://intranet:8080"), "entries are trimmed and compared without case");
  assert.ok(corp("http://localhost:3000"), "the defaults stay");
  assert.ok(!corp("https://corp.example.evil.example"));
  assert.ok(!corp("http://app.corp.example"), "the scheme is part of the pattern");
  assert.ok(!corp("http://ollama.example"), "CORRAL_ORIGINS wins over OLLAMA_ORIGINS");

  const fallback = originMatcher(origins({ CORRAL_ORIGINS: "", OLLAMA_ORIGINS: "'chrome-extension://*'" }));
  assert.ok(fallback("chrome-extension://abcdef"), "OLLAMA_ORIGINS when CORRAL_ORIGINS is empty, quotes stripped");
  assert.ok(!fallback(EVIL));

  const anyone = originMatcher(origins({ OLLAMA_ORIGINS: "*" }));
  for (const o of [EVIL, "null", "http://attacker.localhost:3000"]) assert.ok(anyone(o), `a lone * allows ${o}`);

  const middle = originMatcher(origins({ CORRAL_ORIGINS: "http://*.local:*" }));
  assert.ok(middle("http://printer.local:631"));
  assert.ok(!middle("https://printer.local:631"));
});

test("an entry that can never match a browser's Origin is reported", () => {
  assert.deepEqual(unusableOrigins(loadConfig({}).origins), []);
  assert.deepEqual(unusableOrigins(loadConfig({ CORRAL_ORIGINS: "example.com,https://ok.example,*.example.org" }).origins), ["example.com"]);
});
