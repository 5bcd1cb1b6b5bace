// A pull-through mirror (docs/protocol.md, "Mirrors"): a Corral registry with REGISTRY_MIRRORS
// serves `library/…` from a second, upstream Corral registry, counted through a loopback proxy. A
// miss fetches once, a hit asks upstream for nothing, tags refresh after REGISTRY_MIRROR_TTL, a
// broken or corrupt upstream blob is never kept, concurrent first pulls share one download, the
// cached copy is served when the upstream is down, pushes are refused, and `mirror warm` fetches
// ahead so pulls work with the upstream stopped. Real processes throughout: registries, proxy,
// daemon, and a client that pulls as Ollama's does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { startRegistry, registryCLI, type RegistryProcess } from "./helpers/registry.ts";
import { startProxy, type Proxy } from "./helpers/proxy.ts";
import { dockerRegistryBinary, startDockerRegistry } from "./helpers/docker-registry.ts";
import { startS3 } from "./helpers/s3.ts";
import { Ollama } from "ollama";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { listFiles } from "./helpers/files.ts";
import { waitFor } from "./helpers/faults.ts";
import { OllamaRegistryClient } from "../apps/registry/test/support/ollama-client.ts";
import { makeModel, type TestModel } from "../apps/registry/test/support/fixtures.ts";

const key = generateKeyPair("library");
let upstream: RegistryProcess;
let proxy: Proxy;
let mirror: RegistryProcess;
let daemon: Daemon;

async function push(repo: string, tag: string, model: TestModel): Promise<string> {
  const client = new OllamaRegistryClient({ base: upstream.url, key });
  await client.push(repo, tag, model.manifest, model.blobs);
  return `sha256:${createHash("sha256").update(JSON.stringify(model.manifest)).digest("hex")}`;
}

const modelLayer = (m: TestModel): string => m.manifest.layers[0]!.digest;
const blobGETs = (p: Proxy, digest: string): number => p.log.filter((l) => l.method === "GET" && l.url.includes(`/blobs/${digest}`)).length;

function mirrorOf(target: string, env: Record<string, string> = {}): Promise<RegistryProcess> {
  return startRegistry({ REGISTRY_MIRRORS: `library=${target}`, ...env });
}

/** Files of the mirror's blob store and spool whose names hold the digest's hex. */
async function filesFor(r: RegistryProcess, digest: string): Promise<string[]> {
  const data = r.env["REGISTRY_DATA"]!;
  const files = [...(await listFiles(join(data, "storage"))), ...(await listFiles(join(data, "mirror-spool")))];
  return files.filter((f) => f.includes(digest.slice("sha256:".length)));
}

before(async () => {
  upstream = await startRegistry({ REGISTRY_DEFAULT_VISIBILITY: "public" });
  const add = await registryCLI(upstream, ["user", "add", "library", "--key", formatPublicKeyLine(key.publicKey)]);
  assert.equal(add.code, 0, add.stderr);
  proxy = await startProxy(upstream.url);
  mirror = await mirrorOf(proxy.url);
  daemon = await startDaemon();
});

after(async () => {
  await daemon?.stop();
  await mirror?.stop();
  await proxy?.stop();
  await upstream?.stop();
});

test("a miss fetches from upstream once; a hit asks upstream for no blob", async () => {
  const model = makeModel(1_200_000);
  const digest = await push("library/story", "latest", model);
  const first = await fetch(`${mirror.url}/v2/library/story/manifests/latest`);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get("corral-mirror"), "miss");
  assert.equal(first.headers.get("docker-content-digest"), digest);

  // The first pull, as Ollama's client makes it: HEAD, a GET for the Location, then ranged parts
  // from that URL, here while the blob is still arriving.
  const ollama = new OllamaRegistryClient({ base: mirror.url, minPartSize: 100_000, maxPartSize: 200_000 });
  const pulled = await ollama.pull("library/story", "latest");
  for (const [d, bytes] of model.blobs) assert.deepEqual(pulled.blobs.get(d), bytes, d);
  for (const d of model.blobs.keys()) assert.equal(blobGETs(proxy, d), 1, `upstream GETs of ${d}`);

  // corral pull with a short name and CORRAL_REGISTRY naming the mirror: library/story:latest.
  const before = proxy.log.length;
  const pull = await runCLI(daemon, ["pull", "story", "--insecure"], { env: { CORRAL_REGISTRY: mirror.host } });
  assert.equal(pull.code, 0, pull.stderr);
  const list = await runCLI(daemon, ["list"]);
  assert.match(list.stdout, new RegExp(`${mirror.host}/library/story:latest`));
  assert.deepEqual(
    proxy.log.slice(before).filter((l) => l.url.includes("/blobs/")),
    [],
    "a hit sends no blob request upstream",
  );
  const again = await fetch(`${mirror.url}/v2/library/story/manifests/latest`);
  assert.equal(again.headers.get("corral-mirror"), "hit");
  // The mirrored model is a complete model of the mirror now: its tag is listed.
  const tags = (await (await fetch(`${mirror.url}/v2/library/story/tags/list`)).json()) as { tags: string[] };
  assert.deepEqual(tags.tags, ["latest"]);
  // The catalog says where it came from and when the upstream last confirmed it.
  const origin = new RegExp(`Mirrored from ${proxy.host.replace(/\./g, "\\.")} · <time datetime="[^"]+"[^>]*>refreshed [^<]+<\/time>`);
  assert.match(await (await fetch(`${mirror.url}/library/story`)).text(), origin);
  assert.match(await (await fetch(`${mirror.url}/`)).text(), origin);
  assert.match(await (await fetch(`${mirror.url}/library`)).text(), origin);
});

test("the ollama npm client pulls a model through the daemon from the mirror, on a miss", async () => {
  const model = makeModel(500_000);
  await push("library/npm", "latest", model);
  const client = new Ollama({ host: daemon.url });
  const res = await client.pull({ model: `${mirror.host}/library/npm`, insecure: true, stream: false });
  assert.equal(res.status, "success");
  const shown = await client.show({ model: `${mirror.host}/library/npm` });
  assert.ok(shown.modelfile.length > 0);
  for (const d of model.manifest.layers.slice(0, 2).map((l) => l.digest)) assert.equal(blobGETs(proxy, d), 1, `upstream GETs of ${d}`);
});

test("names the upstream does not have, or keeps private, are unknown", async () => {
  const missing = await fetch(`${mirror.url}/v2/library/nothing-here/manifests/latest`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /NAME_UNKNOWN|MANIFEST_UNKNOWN/);
  await push("library/secret", "latest", makeModel(1000));
  const vis = await registryCLI(upstream, ["visibility", "library/secret", "private"]);
  assert.equal(vis.code, 0, vis.stderr);
  const secret = await fetch(`${mirror.url}/v2/library/secret/manifests/latest`);
  assert.equal(secret.status, 404);
});

test("names the upstream lacks are asked for once; a client asking for many new names is told to wait", async () => {
  const bounded = await mirrorOf(proxy.url, { REGISTRY_MIRROR_LOOKUP_RATE: "3", REGISTRY_MIRROR_MISS_TTL: "3600" });
  try {
    await push("library/known", "latest", makeModel(1200));
    const manifestGETs = (model: string): number => proxy.log.filter((l) => l.url.includes(`/v2/library/${model}/manifests/`)).length;
    const get = (model: string): Promise<Response> => fetch(`${bounded.url}/v2/library/${model}/manifests/latest`);
    // Three lookups of names without a copy here: one that exists, one missing name (asked twice).
    assert.equal((await get("known")).status, 200);
    const known = manifestGETs("known");
    assert.equal((await get("ghost-a")).status, 404);
    const asked = manifestGETs("ghost-a");
    assert.ok(asked > 0);
    assert.equal((await get("ghost-a")).status, 404);
    assert.equal(manifestGETs("ghost-a"), asked, "a missing name is remembered");
    assert.equal((await get("ghost-b")).status, 404);
    // The fourth new name this minute: 429 before the upstream is asked.
    const limited = await get("ghost-c");
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    assert.match(await limited.text(), /TOOMANYREQUESTS/);
    assert.equal(manifestGETs("ghost-c"), 0);
    // Names with a copy here are not charged: the model pulled before still answers, from the copy.
    const again = await get("known");
    assert.equal(again.status, 200);
    assert.equal(again.headers.get("corral-mirror"), "hit");
    assert.equal(manifestGETs("known"), known);
  } finally {
    await bounded.stop();
  }
  // Without the memory of misses each request for a missing name reaches the upstream.
  const forgetful = await mirrorOf(proxy.url, { REGISTRY_MIRROR_MISS_TTL: "0" });
  try {
    const asked = (): number => proxy.log.filter((l) => l.url.includes("/v2/library/ghost-z/manifests/")).length;
    const before = asked();
    assert.equal((await fetch(`${forgetful.url}/v2/library/ghost-z/manifests/latest`)).status, 404);
    const once = asked() - before;
    assert.ok(once > 0);
    assert.equal((await fetch(`${forgetful.url}/v2/library/ghost-z/manifests/latest`)).status, 404);
    assert.equal(asked() - before, 2 * once);
  } finally {
    await forgetful.stop();
  }
});

test("pushes to a mirrored namespace are refused", async () => {
  const start = await fetch(`${mirror.url}/v2/library/mine/blobs/uploads/`, { method: "POST" });
  assert.equal(start.status, 403);
  const body = (await start.json()) as { errors: Array<{ code: string; message: string }> };
  assert.equal(body.errors[0]!.code, "DENIED");
  assert.match(body.errors[0]!.message, /read-only mirror of 127\.0\.0\.1:\d+/);
  const del = await fetch(`${mirror.url}/v2/library/story/manifests/latest`, { method: "DELETE" });
  assert.equal(del.status, 403);
  // corral push says so too (the model pulled by the first test, under a new name there).
  assert.equal((await runCLI(daemon, ["cp", `${mirror.host}/library/story:latest`, `${mirror.host}/library/mine`])).code, 0);
  const pushed = await runCLI(daemon, ["push", `${mirror.host}/library/mine`, "--insecure"]);
  assert.equal(pushed.code, 1);
  assert.match(pushed.stderr, /library\/ is a read-only mirror of 127\.0\.0\.1:\d+: pushes and deletes are refused/);
});

test("concurrent first pulls of one blob share one upstream download", async () => {
  const model = makeModel(1_200_000);
  await push("library/crowd", "latest", model);
  const layer = modelLayer(model);
  let release!: () => void;
  proxy.options.holdBlobs = new Promise<void>((r) => (release = r));
  const m = await fetch(`${mirror.url}/v2/library/crowd/manifests/latest`);
  assert.equal(m.status, 200);
  const clients = Array.from({ length: 6 }, async () => {
    const r = await fetch(`${mirror.url}/v2/library/crowd/blobs/${layer}`);
    assert.equal(r.status, 200);
    return `sha256:${createHash("sha256").update(Buffer.from(await r.arrayBuffer())).digest("hex")}`;
  });
  // The upstream answer is held until the download has begun; every client waits on that one.
  while (blobGETs(proxy, layer) === 0) await new Promise((r) => setImmediate(r));
  release();
  proxy.options.holdBlobs = undefined;
  assert.deepEqual(await Promise.all(clients), Array(6).fill(layer));
  assert.equal(blobGETs(proxy, layer), 1);
});

test("an upstream that breaks off mid-blob: the client's stream fails, nothing is kept, the next pull completes", async () => {
  const model = makeModel(1_200_000);
  await push("library/cut", "latest", model);
  const layer = modelLayer(model);
  proxy.options.cutAfter = { digest: layer, bytes: 300_000 };
  assert.equal((await fetch(`${mirror.url}/v2/library/cut/manifests/latest`)).status, 200);
  const r = await fetch(`${mirror.url}/v2/library/cut/blobs/${layer}`);
  await assert.rejects(r.arrayBuffer());
  proxy.options.cutAfter = undefined;
  // Nothing of it stays: no blob, no spool file once the failed download has let go of it.
  while ((await filesFor(mirror, layer)).length > 0) await new Promise((r) => setImmediate(r));
  const after = await fetch(`${mirror.url}/v2/library/cut/blobs/${layer}`);
  const bytes = Buffer.from(await after.arrayBuffer());
  assert.deepEqual(bytes, model.blobs.get(layer));
  assert.equal(blobGETs(proxy, layer), 2);
  assert.equal((await filesFor(mirror, layer)).length, 1, "stored once complete: the blob, and no spool file");
});

test("a corrupt upstream blob is refused and never kept; a good upstream serves it later", async () => {
  const model = makeModel(1_200_000);
  await push("library/bad", "latest", model);
  const layer = modelLayer(model);
  proxy.options.corruptDigest = layer;
  assert.equal((await fetch(`${mirror.url}/v2/library/bad/manifests/latest`)).status, 200);
  const r = await fetch(`${mirror.url}/v2/library/bad/blobs/${layer}`);
  assert.equal(r.status, 200);
  // Every byte but the last arrives; the last waits for the digest, which fails: the stream is cut.
  await assert.rejects(r.arrayBuffer());
  proxy.options.corruptDigest = undefined;
  while ((await filesFor(mirror, layer)).length > 0) await new Promise((r) => setImmediate(r));
  await waitFor("the refusal's log line", () => /whose digest is sha256:[0-9a-f]{64}; nothing was kept/.test(mirror.logs()));
  const ollama = new OllamaRegistryClient({ base: mirror.url });
  const pulled = await ollama.pull("library/bad", "latest");
  assert.deepEqual(pulled.blobs.get(layer), model.blobs.get(layer));
});

test("tags refresh after the TTL; the cached copy is served, marked stale, while the upstream is down", async () => {
  const own = await startProxy(upstream.url);
  const fresh = await mirrorOf(own.url, { REGISTRY_MIRROR_TTL: "0" });
  try {
    const v1 = makeModel(20_000);
    const d1 = await push("library/moving", "latest", v1);
    const first = await fetch(`${fresh.url}/v2/library/moving/manifests/latest`);
    assert.equal(first.headers.get("corral-mirror"), "miss");
    assert.equal(first.headers.get("docker-content-digest"), d1);
    // The long-TTL mirror caches v1 too.
    assert.equal((await fetch(`${mirror.url}/v2/library/moving/manifests/latest`)).headers.get("docker-content-digest"), d1);

    const v2 = makeModel(20_000);
    const d2 = await push("library/moving", "latest", v2);
    const refreshed = await fetch(`${fresh.url}/v2/library/moving/manifests/latest`);
    assert.equal(refreshed.headers.get("corral-mirror"), "refreshed");
    assert.equal(refreshed.headers.get("docker-content-digest"), d2);
    const kept = await fetch(`${mirror.url}/v2/library/moving/manifests/latest`);
    assert.equal(kept.headers.get("corral-mirror"), "hit");
    assert.equal(kept.headers.get("docker-content-digest"), d1, "within its TTL the mirror serves what it has");

    const ollama = new OllamaRegistryClient({ base: fresh.url });
    await ollama.pull("library/moving", "latest");
    await own.stop();
    const stale = await fetch(`${fresh.url}/v2/library/moving/manifests/latest`);
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get("corral-mirror"), "stale; upstream unreachable");
    assert.equal(stale.headers.get("docker-content-digest"), d2);
    // The log line travels through the registry's stdout, which may reach us after the answer.
    const staleLine = /serving the cached library\/moving:latest; upstream 127\.0\.0\.1:\d+ unreachable/;
    await waitFor("the stale-serve log line", () => staleLine.test(fresh.logs()));
    const again = await new OllamaRegistryClient({ base: fresh.url }).pull("library/moving", "latest");
    for (const [d, bytes] of v2.blobs) assert.deepEqual(again.blobs.get(d), bytes);
    // Nothing cached and the upstream down: a clear 502.
    const none = await fetch(`${fresh.url}/v2/library/never/manifests/latest`);
    assert.equal(none.status, 502);
    assert.match(await none.text(), /could not be fetched from 127\.0\.0\.1:\d+: .*cannot be reached/);
  } finally {
    await fresh.stop();
    await own.stop();
  }
});

test("mirror warm fetches a model ahead; pulls then work with the upstream stopped", async () => {
  const own = await startProxy(upstream.url);
  const warmed = await mirrorOf(own.url);
  try {
    const model = makeModel(300_000);
    const digest = await push("library/warm", "3b", model);
    const warm = await registryCLI(warmed, ["mirror", "warm", "library/warm:3b"]);
    assert.equal(warm.code, 0, warm.stderr);
    assert.match(warm.stdout, /library\/warm:3b: manifest .* \(miss\)/);
    assert.match(warm.stdout, /library\/warm:3b is ready: 4 blobs, .* \(4 fetched from upstream\)/);
    const wrong = await registryCLI(warmed, ["mirror", "warm", "alice/warm"]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /alice is not a mirrored namespace/);
    await own.stop();
    const pulled = await new OllamaRegistryClient({ base: warmed.url }).pull("library/warm", "3b");
    assert.equal(`sha256:${createHash("sha256").update(pulled.manifestBytes).digest("hex")}`, digest);
    for (const [d, bytes] of model.blobs) assert.deepEqual(pulled.blobs.get(d), bytes);
  } finally {
    await warmed.stop();
    await own.stop();
  }
});

const distribution = dockerRegistryBinary() !== undefined;

test("Debian's docker-registry as the upstream: a miss, then a hit", { skip: !distribution && "docker-registry cannot be installed here" }, async () => {
  const dist = await startDockerRegistry();
  const own = await startProxy(dist.url);
  const mirrored = await mirrorOf(own.url);
  try {
    const model = makeModel(400_000);
    await new OllamaRegistryClient({ base: dist.url }).push("library/distro", "v1", model.manifest, model.blobs);
    const first = await runCLI(daemon, ["pull", `${mirrored.host}/library/distro:v1`, "--insecure"]);
    assert.equal(first.code, 0, first.stderr);
    // The model and template layers are this model's own (the daemon has the config and params of earlier pulls).
    for (const d of model.manifest.layers.slice(0, 2).map((l) => l.digest)) assert.equal(blobGETs(own, d), 1, `upstream GETs of ${d}`);
    const rm = await runCLI(daemon, ["rm", `${mirrored.host}/library/distro:v1`]);
    assert.equal(rm.code, 0, rm.stderr);
    const before = own.log.length;
    const second = await runCLI(daemon, ["pull", `${mirrored.host}/library/distro:v1`, "--insecure"]);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(own.log.slice(before), [], "a hit within the TTL asks the upstream for nothing");
  } finally {
    await mirrored.stop();
    await own.stop();
    await dist.stop();
  }
});

test("on S3: a mirrored blob is stored in the bucket once verified and served from there", async () => {
  const s3 = await startS3("corral-mirror");
  const own = await startProxy(upstream.url);
  const onS3 = await mirrorOf(own.url, s3.env);
  try {
    const model = makeModel(600_000);
    await push("library/bucket", "latest", model);
    const first = await new OllamaRegistryClient({ base: onS3.url, minPartSize: 100_000, maxPartSize: 200_000 }).pull("library/bucket", "latest");
    for (const [d, bytes] of model.blobs) assert.deepEqual(first.blobs.get(d), bytes);
    await own.stop();
    // Stored: the blob GET hands out the bucket's URL (in a 200 here, the bucket being on the same host).
    const layer = modelLayer(model);
    const r = await fetch(`${onS3.url}/v2/library/bucket/blobs/${layer}`, { redirect: "manual" });
    await r.body?.cancel();
    assert.ok(r.headers.get("location")!.startsWith(s3.endpoint), r.headers.get("location") ?? "no Location");
    const again = await new OllamaRegistryClient({ base: onS3.url }).pull("library/bucket", "latest");
    for (const [d, bytes] of model.blobs) assert.deepEqual(again.blobs.get(d), bytes);
  } finally {
    await onS3.stop();
    await own.stop();
    await s3.stop();
  }
});
