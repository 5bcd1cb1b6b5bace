// What a mirror sends to and accepts from an upstream it cannot trust (docs/protocol.md, "Mirrors";
// SECURITY.md): credentials from `user:password@` in REGISTRY_MIRRORS answer a Bearer challenge at
// the token realm (as Basic) and never reach another host a blob is redirected to, a redirect to
// something other than http(s) is not followed, an oversized or mislabelled manifest is refused,
// and the password never appears in the registry's output.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startRegistry, type RegistryProcess } from "./helpers/registry.ts";
import { site, json, model, type Site } from "./helpers/fake-registry.ts";

const m = model(50_000);
const other = model(1000);
const big = Buffer.from(JSON.stringify({ schemaVersion: 2, pad: "x".repeat(5 << 20) }));
const BASIC = `Basic ${Buffer.from("alice:s3cret pass").toString("base64")}`;
let cdn: Site;
let upstream: Site;
let mirror: RegistryProcess;

before(async () => {
  // Where the upstream sends blob downloads: another host, which must never see a credential.
  cdn = await site((req, res) => {
    res.writeHead(200, { "Content-Length": m.layer.size }).end(m.layer.bytes);
  });
  upstream = await site((req, res, url) => {
    const host = req.headers.host!;
    if (url.pathname === "/token") {
      if (req.headers.authorization !== BASIC) return json(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] });
      return json(res, 200, { token: `tok-${url.searchParams.get("scope")}`, expires_in: 300 });
    }
    if (!req.headers.authorization?.startsWith("Bearer tok-repository:library/")) {
      res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${host}/token",service="upstream"` }).end();
      return;
    }
    if (url.pathname === "/v2/library/model/manifests/latest") {
      res.writeHead(200, { "Content-Type": "application/vnd.docker.distribution.manifest.v2+json", "Content-Length": m.manifest.length }).end(m.manifest);
    } else if (url.pathname === "/v2/library/huge/manifests/latest") {
      res.writeHead(200, { "Content-Type": "application/vnd.docker.distribution.manifest.v2+json" }).end(big);
    } else if (url.pathname === "/v2/library/liar/manifests/latest") {
      res.writeHead(200, { "Content-Type": "application/vnd.docker.distribution.manifest.v2+json", "Docker-Content-Digest": m.config.digest }).end(m.manifest);
    } else if (url.pathname === "/v2/library/sneaky/manifests/latest") {
      res.writeHead(200, { "Content-Type": "application/vnd.docker.distribution.manifest.v2+json" }).end(other.manifest);
    } else if (url.pathname === `/v2/library/model/blobs/${m.layer.digest}`) {
      res.writeHead(307, { Location: `http://${cdn.host}/blob?x=1` }).end();
    } else if (url.pathname === `/v2/library/sneaky/blobs/${other.layer.digest}`) {
      res.writeHead(307, { Location: "file:///etc/passwd" }).end();
    } else if (url.pathname === `/v2/library/model/blobs/${m.config.digest}`) {
      res.writeHead(200, { "Content-Length": m.config.size }).end(m.config.bytes);
    } else json(res, 404, { errors: [{ code: "NAME_UNKNOWN", message: "unknown" }] });
  });
  mirror = await startRegistry({ REGISTRY_MIRRORS: `library=http://alice:s3cret%20pass@${upstream.host}` });
});

after(async () => {
  await mirror?.stop();
  await upstream?.close();
  await cdn?.close();
});

test("credentials answer the upstream's challenge and stay on its host", async () => {
  const manifest = await fetch(`${mirror.url}/v2/library/model/manifests/latest`);
  assert.equal(manifest.status, 200, await manifest.clone().text());
  assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), m.manifest);
  assert.ok(upstream.seen.some((s) => s.path === "/token" && s.authorization === BASIC), "Basic credentials went to the token realm");
  const blob = await fetch(`${mirror.url}/v2/library/model/blobs/${m.layer.digest}`);
  assert.deepEqual(Buffer.from(await blob.arrayBuffer()), m.layer.bytes);
  assert.equal(cdn.seen.length, 1);
  assert.equal(cdn.seen[0]!.authorization, undefined, "nothing of the upstream's credentials or tokens goes to another host");
  assert.doesNotMatch(mirror.logs(), /s3cret/);
});

test("an upstream's manifest that is too large, or whose digest header lies, is refused", async () => {
  const huge = await fetch(`${mirror.url}/v2/library/huge/manifests/latest`);
  assert.equal(huge.status, 502);
  assert.match(await huge.text(), /larger than \d+ bytes/);
  const liar = await fetch(`${mirror.url}/v2/library/liar/manifests/latest`);
  assert.equal(liar.status, 502);
  assert.match(await liar.text(), /says its digest is sha256:[0-9a-f]+ but its bytes have sha256:/);
});

test("a redirect to anything but http(s) is not followed, and the client hears why", async () => {
  assert.equal((await fetch(`${mirror.url}/v2/library/sneaky/manifests/latest`)).status, 200);
  const blob = await fetch(`${mirror.url}/v2/library/sneaky/blobs/${other.layer.digest}`);
  assert.equal(blob.status, 502);
  assert.match(await blob.text(), /redirected to a file: URL; only http and https are followed/);
  assert.doesNotMatch(mirror.logs(), /s3cret/);
});
