// The registry API in process: the authorisation matrix, bad input of every kind (the right OCI
// error, never a 500, nothing stored), tags, catalog, mounts and garbage collection.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatPublicKeyLine, generateKeyPair, newNonce, signedAuthorization, tokenRequestChallenge, tokenRequestURL } from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType, MAX_MANIFEST_BYTES } from "@corral/shared/manifest";
import { issueToken } from "../src/auth/tokens.ts";
import { directAdmin } from "../src/services/admin.ts";
import { BASE, bearer, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { makeModel } from "./support/fixtures.ts";

const keys = {
  alice: generateKeyPair(),
  rita: generateKeyPair(),
  walt: generateKeyPair(),
  olga: generateKeyPair(),
  otto: generateKeyPair(),
};
type Actor = "anonymous" | "reader" | "writer" | "owner" | "other";
const actorKey = { anonymous: undefined, reader: keys.rita, writer: keys.walt, owner: keys.olga, other: keys.otto } as const;

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
  return { status: res.status, code: body.errors[0]!.code, message: body.errors[0]!.message };
}

let r: InProcess;
let aliceToken: string;
const model = makeModel(20_000);

before(async () => {
  r = await startInProcess();
  const admin = directAdmin(r.registry);
  for (const [name, key] of Object.entries(keys)) await admin.addUser(name, [formatPublicKeyLine(key.publicKey)]);
  await admin.grant("alice", "rita", "reader");
  await admin.grant("alice", "walt", "writer");
  await admin.grant("alice", "olga", "owner");
  aliceToken = await r.token(keys.alice, "repository:alice/pub:pull,push,delete repository:alice/priv:pull,push,delete");
  await pushModel(r, aliceToken, { repo: "alice/pub", tag: "latest", model });
  await pushModel(r, aliceToken, { repo: "alice/priv", tag: "latest", model });
  await admin.setVisibility("alice/pub", "public");
});
after(async () => r?.close());

describe("authorisation matrix", () => {
  const expected: Record<Actor, Record<"public" | "private", Array<"pull" | "push" | "delete">>> = {
    anonymous: { public: ["pull"], private: [] },
    other: { public: ["pull"], private: [] },
    reader: { public: ["pull"], private: ["pull"] },
    writer: { public: ["pull", "push"], private: ["pull", "push"] },
    owner: { public: ["pull", "push", "delete"], private: ["pull", "push", "delete"] },
  };
  for (const actor of Object.keys(expected) as Actor[]) {
    for (const vis of ["public", "private"] as const) {
      const repo = vis === "public" ? "alice/pub" : "alice/priv";
      test(`${actor} on a ${vis} model`, async () => {
        const key = actorKey[actor];
        const token = await r.token(key, `repository:${repo}:pull,push,delete`);
        const allowed = expected[actor][vis];
        // A tag of its own for the delete check, so every row starts from the same state.
        const tag = `t-${actor}`;
        await r.request(`/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: bearer(aliceToken, { "Content-Type": MediaType.manifestV2 }), body: JSON.stringify(model.manifest) });

        const pull = await r.request(`/v2/${repo}/manifests/latest`, { headers: bearer(token) });
        assert.equal(pull.status, allowed.includes("pull") ? 200 : 401, "pull");
        const pullAnon = await r.request(`/v2/${repo}/manifests/latest`, { headers: bearer(key ? token : undefined) });
        assert.equal(pullAnon.status, allowed.includes("pull") ? 200 : 401, "pull without asking for a token first");

        const push = await r.request(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
        assert.equal(push.status, allowed.includes("push") ? 202 : 401, "push");
        if (push.status === 401) {
          assert.equal(push.headers.get("www-authenticate"), `Bearer realm="${BASE}/v2/token",service="registry.test",scope="repository:${repo}:push,pull"`);
        }

        const del = await r.request(`/v2/${repo}/manifests/${tag}`, { method: "DELETE", headers: bearer(token) });
        assert.equal(del.status, allowed.includes("delete") ? 202 : 401, "delete");
        const still = await r.request(`/v2/${repo}/manifests/${tag}`, { headers: bearer(aliceToken) });
        assert.equal(still.status, allowed.includes("delete") ? 404 : 200, "the tag is gone only when the delete was allowed");
      });
    }
  }

  test("an organisation's writer can push into it; nobody else can create a namespace", async () => {
    const admin = directAdmin(r.registry);
    await admin.createOrg("team", "alice");
    await admin.addMember("team", "walt", "writer");
    const walt = await r.token(keys.walt, "repository:team/model:push,pull");
    await pushModel(r, walt, { repo: "team/model", tag: "latest", model });
    const otto = await r.token(keys.otto, "repository:nobody/model:push,pull");
    const res = await r.request("/v2/nobody/model/blobs/uploads/", { method: "POST", headers: bearer(otto) });
    assert.equal(res.status, 401);
  });

  test("the catalog shows only what the caller may pull", async () => {
    const anon = (await (await r.request("/v2/_catalog")).json()) as { repositories: string[] };
    assert.deepEqual(anon.repositories, ["alice/pub"]);
    const rita = await r.token(keys.rita, "");
    const mine = (await (await r.request("/v2/_catalog", { headers: bearer(rita) })).json()) as { repositories: string[] };
    assert.deepEqual(mine.repositories, ["alice/priv", "alice/pub"]);
    const page = await r.request("/v2/_catalog?n=1", { headers: bearer(rita) });
    assert.match(page.headers.get("link") ?? "", /last=alice%2Fpriv/);
  });
});

describe("bad input", () => {
  test("invalid names, traversal and digests never reach storage", async () => {
    const cases: Array<[string, number, string]> = [
      ["/v2/Bad..ns/model/manifests/latest", 400, "NAME_INVALID"],
      ["/v2/alice/..%2F..%2Fetc/manifests/latest", 400, "NAME_INVALID"],
      ["/v2/alice/%2e%2e/manifests/latest", 400, "NAME_INVALID"],
      ["/v2/a/b/c/manifests/latest", 400, "NAME_INVALID"],
      ["/v2/alice/pub/manifests/bad:tag:x", 400, "DIGEST_INVALID"],
      ["/v2/alice/pub/manifests/.hidden", 400, "TAG_INVALID"],
      ["/v2/alice/pub/blobs/sha256:xyz", 400, "DIGEST_INVALID"],
      ["/v2/alice/pub/blobs/sha256:..%2F..%2Fetc%2Fpasswd", 400, "DIGEST_INVALID"],
      ["/v2/alice/pub/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", 400, "DIGEST_INVALID"],
      [`/v2/alice/pub/blobs/${sha256Bytes("absent")}`, 404, "BLOB_UNKNOWN"],
      ["/v2/alice/pub/manifests/nope", 404, "MANIFEST_UNKNOWN"],
      [`/data/${sha256Bytes("absent")}?expires=99999999999&sig=forged`, 403, "DENIED"],
      ["/v2/alice/pub/tags/list?n=abc", 400, "INVALID_REQUEST"],
    ];
    for (const [path, status, code] of cases) {
      const res = await r.request(path, { headers: bearer(aliceToken) });
      const e = await errorOf(res);
      assert.deepEqual([e.status, e.code], [status, code], `${path}: ${e.message}`);
    }
  });

  test("bad manifests are refused and nothing is stored", async () => {
    const put = (body: string | Buffer, tag = "bad", type: string = MediaType.manifestV2) =>
      r.request(`/v2/alice/pub/manifests/${tag}`, { method: "PUT", headers: bearer(aliceToken, { "Content-Type": type }), body });
    assert.deepEqual(await errorOf(await put("{not json")).then((e) => [e.status, e.code]), [400, "MANIFEST_INVALID"]);
    assert.deepEqual(await errorOf(await put('{"schemaVersion":1}')).then((e) => [e.status, e.code]), [400, "MANIFEST_INVALID"]);
    const missing = { ...model.manifest, layers: [...model.manifest.layers, { mediaType: MediaType.model, digest: sha256Bytes("missing"), size: 7 }] };
    const e = await errorOf(await put(JSON.stringify(missing)));
    assert.deepEqual([e.status, e.code], [400, "MANIFEST_BLOB_UNKNOWN"]);
    const wrongSize = { ...model.manifest, layers: [{ ...model.manifest.layers[0]!, size: 1 }] };
    assert.equal((await errorOf(await put(JSON.stringify(wrongSize)))).code, "MANIFEST_INVALID");
    const big = await put(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 32));
    assert.deepEqual(await errorOf(big).then((x) => [x.status, x.code]), [413, "SIZE_INVALID"]);
    const index = await put(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }));
    assert.equal((await errorOf(index)).code, "MANIFEST_INVALID");
    const byDigest = await put(JSON.stringify(model.manifest), sha256Bytes("something else"));
    assert.equal((await errorOf(byDigest)).code, "DIGEST_INVALID");
    assert.equal((await r.request("/v2/alice/pub/manifests/bad", { headers: bearer(aliceToken) })).status, 404);
  });

  test("an upload whose bytes do not match its digest keeps nothing", async () => {
    const start = await r.request("/v2/alice/pub/blobs/uploads/", { method: "POST", headers: bearer(aliceToken) });
    const loc = start.headers.get("location")!;
    assert.ok(loc.startsWith(`${BASE}/v2/alice/pub/blobs/uploads/`));
    const patch = await r.request(loc, { method: "PATCH", headers: bearer(aliceToken, { "Content-Range": "0-4", "Content-Length": "5" }), body: "hello" });
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get("range"), "0-4");
    const claimed = sha256Bytes("goodbye");
    const fin = await r.request(`${loc}?digest=${claimed}`, { method: "PUT", headers: bearer(aliceToken) });
    assert.deepEqual(await errorOf(fin).then((e) => [e.status, e.code]), [400, "DIGEST_INVALID"]);
    assert.equal((await r.request(`/v2/alice/pub/blobs/${claimed}`, { method: "HEAD", headers: bearer(aliceToken) })).status, 404);
    assert.equal((await r.request(`/v2/alice/pub/blobs/${sha256Bytes("hello")}`, { method: "HEAD", headers: bearer(aliceToken) })).status, 404);
    assert.equal((await errorOf(await r.request(loc, { headers: bearer(aliceToken) }))).code, "BLOB_UPLOAD_UNKNOWN");
    const id = loc.split("/").pop();
    for await (const u of r.registry.store.listUploads()) assert.notEqual(u.id, id, "no upload data is left in the store");
  });

  test("malformed ranges, upload ids and lengths", async () => {
    const start = await r.request("/v2/alice/pub/blobs/uploads/", { method: "POST", headers: bearer(aliceToken) });
    const loc = start.headers.get("location")!;
    const bad = await r.request(loc, { method: "PATCH", headers: bearer(aliceToken, { "Content-Range": "bytes=oops" }), body: "x" });
    assert.deepEqual(await errorOf(bad).then((e) => [e.status, e.code]), [416, "RANGE_INVALID"]);
    const mismatch = await r.request(loc, { method: "PATCH", headers: bearer(aliceToken, { "Content-Range": "0-9", "Content-Length": "3" }), body: "abc" });
    assert.equal(mismatch.status, 416);
    const unknown = await r.request("/v2/alice/pub/blobs/uploads/not-a-uuid", { method: "PATCH", headers: bearer(aliceToken), body: "x" });
    assert.deepEqual(await errorOf(unknown).then((e) => [e.status, e.code]), [404, "BLOB_UPLOAD_UNKNOWN"]);
    const noDigest = await r.request(loc, { method: "PUT", headers: bearer(aliceToken) });
    assert.equal((await errorOf(noDigest)).code, "DIGEST_INVALID");
    const range = await r.request(`/v2/alice/pub/blobs/${model.manifest.layers[0]!.digest}`, { headers: bearer(aliceToken, { Range: "bytes=999999-" }) });
    assert.equal(range.status, 416);
  });

  test("bad signatures, stale timestamps, expired and forged tokens are 401", async () => {
    const scope = "repository:alice/priv:pull";
    const url = tokenRequestURL({ realm: `${BASE}/v2/token`, service: "registry.test", scope, ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
    const forged = signedAuthorization(keys.otto, tokenRequestChallenge(url)).split(":");
    const aliceAuth = signedAuthorization(keys.alice, tokenRequestChallenge(url)).split(":");
    const mixed = `${aliceAuth[0]}:${forged[1]}`;
    assert.match((await errorOf(await r.request(url, { headers: { Authorization: mixed } }))).message, /signature does not match/);
    const tampered = url.replace("pull", "push");
    assert.equal((await r.request(tampered, { headers: { Authorization: aliceAuth.join(":") } })).status, 401);
    assert.equal((await r.request(url, { headers: { Authorization: "garbage" } })).status, 401);
    assert.equal((await r.request(url, { headers: { Authorization: "Basic YTpi" } })).status, 401);
    const old = tokenRequestURL({ realm: `${BASE}/v2/token`, service: "registry.test", scope, ts: Math.floor(Date.now() / 1000) - 3600, nonce: newNonce() });
    assert.match((await errorOf(await r.request(old, { headers: { Authorization: signedAuthorization(keys.alice, tokenRequestChallenge(old)) } }))).message, /timestamp/);

    const expired = await issueToken(r.registry.secrets.tokenKey, "registry.test", { sub: "alice", access: [{ type: "repository", name: "alice/priv", actions: ["pull"] }] }, -60);
    const res = await r.request("/v2/alice/priv/manifests/latest", { headers: bearer(expired.token) });
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
    assert.match((await errorOf(res)).message, /expired/);
    const otherKey = await issueToken(new Uint8Array(32), "registry.test", { sub: "alice", access: [{ type: "repository", name: "alice/priv", actions: ["pull"] }] }, 60);
    assert.equal((await r.request("/v2/alice/priv/manifests/latest", { headers: bearer(otherKey.token) })).status, 401);
  });
});

describe("tags, mounts and garbage collection", () => {
  test("tags/list is sorted and paginated", async () => {
    const res = await r.request("/v2/alice/pub/tags/list", { headers: bearer(aliceToken) });
    const body = (await res.json()) as { name: string; tags: string[] };
    assert.equal(body.name, "alice/pub");
    assert.deepEqual(body.tags, [...body.tags].sort());
    assert.ok(body.tags.includes("latest"));
  });

  test("mounting needs pull on the source; without it the client gets a normal upload", async () => {
    const digest = model.manifest.layers[0]!.digest;
    const otto = await r.token(keys.otto, "repository:otto/stolen:push,pull");
    const fromPrivate = await r.request(`/v2/otto/stolen/blobs/uploads/?mount=${digest}&from=alice/priv`, { method: "POST", headers: bearer(otto) });
    assert.equal(fromPrivate.status, 202, "no mount from a repository otto cannot pull");
    const fromPublic = await r.request(`/v2/otto/stolen/blobs/uploads/?mount=${digest}&from=alice/pub`, { method: "POST", headers: bearer(otto) });
    assert.equal(fromPublic.status, 201);
    const fileName = await r.request(`/v2/otto/stolen/blobs/uploads/?mount=${digest}&from=model.gguf`, { method: "POST", headers: bearer(otto) });
    assert.equal(fileName.status, 202, "Ollama's file-name provenance falls back to an upload");
  });

  test("gc removes unreferenced blobs after the grace period and keeps referenced ones", async () => {
    const orphan = Buffer.from("an orphan blob");
    const d = sha256Bytes(orphan);
    const up = await r.request(`/v2/alice/pub/blobs/uploads/?digest=${d}`, { method: "POST", headers: bearer(aliceToken), body: orphan });
    assert.equal(up.status, 201);
    const admin = directAdmin(r.registry);
    const early = await admin.gc(false);
    assert.equal(early.blobsRemoved, 0, "inside the grace period nothing goes");
    const cfg = r.registry.config as { gcGraceSeconds: number };
    const saved = cfg.gcGraceSeconds;
    cfg.gcGraceSeconds = 0;
    try {
      const dry = await admin.gc(true);
      assert.ok(dry.linksRemoved >= 1);
      assert.ok(await r.registry.store.stat(d), "a dry run deletes nothing");
      const report = await admin.gc(false);
      assert.ok(report.blobsRemoved >= 1);
    } finally {
      cfg.gcGraceSeconds = saved;
    }
    assert.equal(await r.registry.store.stat(d), undefined);
    for (const digest of model.blobs.keys()) assert.ok(await r.registry.store.stat(digest), "referenced blobs stay");
    const pulled = await r.request(`/v2/alice/pub/blobs/${model.manifest.layers[0]!.digest}`, { headers: bearer(aliceToken) });
    assert.equal(pulled.status, 200);
    const loc = pulled.headers.get("location")!;
    const part = await r.request(loc, { headers: { Range: "bytes=10-19" } });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), model.blobs.get(model.manifest.layers[0]!.digest)!.subarray(10, 20));
  });
});
