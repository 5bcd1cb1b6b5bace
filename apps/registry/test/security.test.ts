// Security of the registry API in process: signature replay and stale timestamps, tokens reused for
// another repository or action, privilege escalation between namespaces, private-model
// enumeration (catalog, tag lists, manifests, blobs, search) and rate limiting of the token and
// login-link endpoints.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  EMPTY_BODY_HASH,
  encodeQuery,
  formatPublicKeyLine,
  generateKeyPair,
  newNonce,
  signedAuthorization,
  tokenRequestChallenge,
  tokenRequestURL,
  type KeyPair,
} from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType } from "@corral/shared/manifest";
import { createApp } from "../src/app.ts";
import { TokenBuckets } from "../src/auth/rate-limit.ts";
import { directAdmin } from "../src/services/admin.ts";
import { BASE, bearer, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { makeModel } from "./support/fixtures.ts";

const keys = { alice: generateKeyPair(), bob: generateKeyPair(), eve: generateKeyPair() };
const secret = makeModel(10_000);
const open = makeModel(10_000);
const evesModel = makeModel(10_000);
/** The model layer's digest: it exists only in the private alice/secret. */
const secretDigest = secret.manifest.layers[0]!.digest;
const missingDigest = sha256Bytes(randomBytes(32));

let r: InProcess;
let aliceToken: string;

interface Answer {
  status: number;
  code: string | undefined;
  /** The challenge with the repository name replaced, so two repositories' answers compare. */
  challenge: string | undefined;
}

async function answer(res: Response, repo: string): Promise<Answer> {
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, challenge: res.headers.get("www-authenticate")?.replaceAll(repo, "<repo>") ?? undefined };
}

function tokenURL(scope: string, ts = Math.floor(Date.now() / 1000), nonce = newNonce()): string {
  return tokenRequestURL({ realm: `${BASE}/v2/token`, service: "registry.test", scope, ts, nonce });
}

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
  return { status: res.status, code: body.errors[0]!.code, message: body.errors[0]!.message };
}

before(async () => {
  r = await startInProcess();
  const admin = directAdmin(r.registry);
  for (const [name, key] of Object.entries(keys)) await admin.addUser(name, [formatPublicKeyLine(key.publicKey)]);
  await admin.createOrg("xorg", "alice");
  await admin.createOrg("yorg", "alice");
  await admin.addMember("xorg", "bob", "writer");
  aliceToken = await r.token(keys.alice, "repository:alice/secret:pull,push repository:alice/secret2:pull,push repository:alice/open:pull,push repository:yorg/m:pull,push");
  await pushModel(r, aliceToken, { repo: "alice/secret", tag: "latest", model: secret });
  await pushModel(r, aliceToken, { repo: "alice/secret2", tag: "latest", model: open });
  await pushModel(r, aliceToken, { repo: "alice/open", tag: "latest", model: open });
  await pushModel(r, aliceToken, { repo: "yorg/m", tag: "latest", model: open });
  await admin.setVisibility("alice/open", "public");
  const eve = await r.token(keys.eve, "repository:eve/mine:pull,push");
  await pushModel(r, eve, { repo: "eve/mine", tag: "latest", model: evesModel });
});
after(async () => r?.close());

describe("signed token requests", () => {
  test("a replayed request (same nonce) is refused, even with a fresh signature over the same URL", async () => {
    const url = tokenURL("repository:alice/secret:pull");
    const auth = signedAuthorization(keys.alice, tokenRequestChallenge(url));
    assert.equal((await r.request(url, { headers: { Authorization: auth } })).status, 200);
    const replay = await errorOf(await r.request(url, { headers: { Authorization: auth } }));
    assert.deepEqual([replay.status, replay.code], [401, "UNAUTHORIZED"]);
    assert.match(replay.message, /already used/);
    const resigned = await r.request(url, { headers: { Authorization: signedAuthorization(keys.alice, tokenRequestChallenge(url)) } });
    assert.equal(resigned.status, 401, "the nonce, not the signature bytes, is what may be used once");
  });

  test("a stale or future ts is refused, and does not burn the nonce", async () => {
    const nonce = newNonce();
    for (const ts of [Math.floor(Date.now() / 1000) - 3600, Math.floor(Date.now() / 1000) + 3600]) {
      const url = tokenURL("repository:alice/secret:pull", ts, nonce);
      const e = await errorOf(await r.request(url, { headers: { Authorization: signedAuthorization(keys.alice, tokenRequestChallenge(url)) } }));
      assert.deepEqual([e.status, e.code], [401, "UNAUTHORIZED"]);
      assert.match(e.message, /timestamp/);
    }
    const url = tokenURL("repository:alice/secret:pull", Math.floor(Date.now() / 1000), nonce);
    assert.equal((await r.request(url, { headers: { Authorization: signedAuthorization(keys.alice, tokenRequestChallenge(url)) } })).status, 200);
  });

  test("a signature over one URL does not cover another scope", async () => {
    const url = tokenURL("repository:alice/secret:pull");
    const auth = signedAuthorization(keys.alice, tokenRequestChallenge(url));
    const widened = url.replace("alice%2Fsecret%3Apull", "alice%2Fsecret%3Apull%2Cpush%2Cdelete");
    assert.notEqual(widened, url);
    assert.equal((await r.request(widened, { headers: { Authorization: auth } })).status, 401);
  });
});

describe("tokens are bound to their repository and actions", () => {
  test("a pull token for alice/secret is refused for alice/secret2 with a challenge naming alice/secret2", async () => {
    const t = await r.token(keys.alice, "repository:alice/secret:pull");
    assert.equal((await r.request("/v2/alice/secret/manifests/latest", { headers: bearer(t) })).status, 200);
    for (const path of ["/v2/alice/secret2/manifests/latest", "/v2/alice/secret2/tags/list", `/v2/alice/secret2/blobs/${open.manifest.layers[0]!.digest}`]) {
      const res = await r.request(path, { headers: bearer(t) });
      assert.equal(res.status, 401, path);
      assert.equal(res.headers.get("www-authenticate"), `Bearer realm="${BASE}/v2/token",service="registry.test",scope="repository:alice/secret2:pull"`, path);
    }
  });

  test("a pull token does not push or delete", async () => {
    const t = await r.token(keys.alice, "repository:alice/secret:pull");
    const push = await r.request("/v2/alice/secret/blobs/uploads/", { method: "POST", headers: bearer(t) });
    assert.equal(push.status, 401);
    assert.match(push.headers.get("www-authenticate") ?? "", /scope="repository:alice\/secret:push,pull"/);
    const put = await r.request("/v2/alice/secret/manifests/evil", { method: "PUT", headers: bearer(t, { "Content-Type": MediaType.manifestV2 }), body: JSON.stringify(secret.manifest) });
    assert.equal(put.status, 401);
    const del = await r.request("/v2/alice/secret/manifests/latest", { method: "DELETE", headers: bearer(t) });
    assert.equal(del.status, 401);
    assert.match(del.headers.get("www-authenticate") ?? "", /scope="repository:alice\/secret:delete"/);
  });

  test("a token asks for more than the account has and gets only what it has", async () => {
    const t = await r.token(keys.eve, "repository:alice/secret:pull,push,delete repository:eve/mine:*");
    const [, payload] = t.split(".");
    const access = (JSON.parse(Buffer.from(payload!, "base64url").toString()) as { access: Array<{ name: string; actions: string[] }> }).access;
    assert.deepEqual(access, [{ type: "repository", name: "eve/mine", actions: ["pull", "push", "delete"] }]);
  });
});

describe("privilege escalation between namespaces", () => {
  test("a writer of xorg pushes to xorg only: not to yorg, not to another user's namespace", async () => {
    const t = await r.token(keys.bob, "repository:xorg/m:push,pull repository:yorg/m:push,pull repository:alice/secret:push,pull repository:alice/new:push,pull");
    await pushModel(r, t, { repo: "xorg/m", tag: "latest", model: evesModel });
    for (const repo of ["yorg/m", "alice/secret", "alice/new"]) {
      const res = await r.request(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(t) });
      assert.equal(res.status, 401, repo);
      const bytes = evesModel.blobs.get(evesModel.manifest.config.digest)!;
      const mono = await r.request(`/v2/${repo}/blobs/uploads/?digest=${evesModel.manifest.config.digest}`, { method: "POST", headers: bearer(t, { "Content-Length": String(bytes.length) }), body: bytes });
      assert.equal(mono.status, 401, `${repo}: monolithic upload`);
      const put = await r.request(`/v2/${repo}/manifests/latest`, { method: "PUT", headers: bearer(t, { "Content-Type": MediaType.manifestV2 }), body: JSON.stringify(open.manifest) });
      assert.equal(put.status, 401, `${repo}: manifest PUT`);
    }
    assert.equal((await r.request("/v2/alice/new/manifests/latest", { headers: bearer(aliceToken) })).status, 401, "no repository was created");
  });

  test("the admin API refuses registry tokens and no token: visibility and membership stay", async () => {
    const t = await r.token(keys.bob, "repository:xorg/m:push,pull");
    const attempts: Array<[string, string, unknown]> = [
      ["PUT", "/admin/repositories/alice/secret/visibility", { visibility: "public" }],
      ["POST", "/admin/orgs/yorg/members", { user: "bob", role: "owner" }],
      ["POST", "/admin/namespaces/alice/grants", { user: "bob", role: "owner" }],
      ["POST", "/admin/tokens", { user: "alice", scopes: ["repository:alice/secret:pull"] }],
      ["POST", "/admin/users/alice/keys", { key: formatPublicKeyLine(keys.bob.publicKey) }],
    ];
    for (const [method, path, body] of attempts) {
      for (const headers of [{}, bearer(t), { Authorization: "Bearer admin-secreT" }, { Authorization: "Basic YWRtaW46YWRtaW4=" }]) {
        const res = await r.request(path, { method, headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
        assert.ok(res.status === 401 || res.status === 403, `${method} ${path} with ${JSON.stringify(headers)}: ${res.status}`);
      }
    }
    assert.equal((await r.request("/v2/alice/secret/manifests/latest")).status, 401, "still private");
    const bobs = await r.token(keys.bob, "repository:yorg/m:push,pull repository:alice/secret:pull");
    assert.equal((await r.request("/v2/yorg/m/blobs/uploads/", { method: "POST", headers: bearer(bobs) })).status, 401, "still no role on yorg");
    assert.equal((await r.request("/v2/alice/secret/manifests/latest", { headers: bearer(bobs) })).status, 401, "still no access to alice's key-owned namespace");
  });
});

describe("private models do not leak", () => {
  test("tags/list, manifest HEAD/GET and blob HEAD/GET of a private repository answer as for one that does not exist", async () => {
    const eve = await r.token(keys.eve, "repository:alice/secret:pull repository:alice/nothing:pull repository:nobody/nothing:pull");
    for (const [who, headers] of [["anonymous", {}], ["eve", bearer(eve)]] as const) {
      for (const [method, suffix] of [
        ["GET", "tags/list"],
        ["HEAD", "manifests/latest"],
        ["GET", "manifests/latest"],
        ["GET", `manifests/${sha256Bytes(Buffer.from(JSON.stringify(secret.manifest)))}`],
        ["HEAD", `blobs/${secretDigest}`],
        ["GET", `blobs/${secretDigest}`],
      ] as const) {
        const got = await answer(await r.request(`/v2/alice/secret/${suffix}`, { method, headers }), "alice/secret");
        assert.equal(got.status, 401, `${who} ${method} ${suffix}`);
        for (const other of ["alice/nothing", "nobody/nothing"]) {
          const want = await answer(await r.request(`/v2/${other}/${suffix}`, { method, headers }), other);
          assert.deepEqual(got, want, `${who} ${method} ${suffix}: alice/secret vs ${other}`);
        }
      }
    }
  });

  test("_catalog lists a private repository only to those who may pull it", async () => {
    const list = async (headers: Record<string, string>): Promise<string[]> => ((await (await r.request("/v2/_catalog?n=1000", { headers })).json()) as { repositories: string[] }).repositories;
    assert.deepEqual(await list({}), ["alice/open"]);
    assert.deepEqual(await list(bearer(await r.token(keys.eve, ""))), ["alice/open", "eve/mine"]);
    assert.deepEqual(await list(bearer(await r.token(keys.bob, ""))), ["alice/open", "xorg/m"]);
    assert.ok((await list(bearer(aliceToken))).includes("alice/secret"));
    // Paging from a private name reveals nothing either.
    const after = (await (await r.request("/v2/_catalog?n=10&last=alice%2Fs")).json()) as { repositories: string[] };
    assert.deepEqual(after.repositories, []);
  });

  test("a blob that exists only in a private repository is 404 through every repository the caller can read", async () => {
    const eve = await r.token(keys.eve, "repository:eve/mine:pull,push");
    const bob = await r.token(keys.bob, "repository:xorg/m:pull,push");
    const through: Array<[string, Record<string, string>]> = [
      ["alice/open", {}],
      ["eve/mine", bearer(eve)],
      ["xorg/m", bearer(bob)],
    ];
    for (const [repo, headers] of through) {
      for (const method of ["HEAD", "GET"]) {
        const leaked = await answer(await r.request(`/v2/${repo}/blobs/${secretDigest}`, { method, headers }), repo);
        const missing = await answer(await r.request(`/v2/${repo}/blobs/${missingDigest}`, { method, headers }), repo);
        assert.equal(leaked.status, 404, `${method} through ${repo}`);
        assert.deepEqual(leaked, missing, `${method} through ${repo}: same answer as a digest nobody has`);
      }
    }
  });

  test("a private blob cannot be claimed by digest: no mount without pull, no empty monolithic upload, no manifest naming it", async () => {
    const eve = await r.token(keys.eve, "repository:eve/mine:pull,push");
    const mount = await r.request(`/v2/eve/mine/blobs/uploads/?mount=${secretDigest}&from=alice/secret`, { method: "POST", headers: bearer(eve) });
    assert.equal(mount.status, 202, "a mount the caller may not read becomes an ordinary upload");
    const mountMissing = await r.request(`/v2/eve/mine/blobs/uploads/?mount=${missingDigest}&from=alice/secret`, { method: "POST", headers: bearer(eve) });
    assert.equal(mountMissing.status, mount.status, "and looks the same as for a digest that does not exist");

    for (const digest of [secretDigest, missingDigest]) {
      const mono = await r.request(`/v2/eve/mine/blobs/uploads/?digest=${digest}`, { method: "POST", headers: bearer(eve, { "Content-Length": "0" }), body: new Uint8Array() });
      assert.equal(mono.status, 400, `empty monolithic upload claiming ${digest === secretDigest ? "the private" : "a missing"} digest`);
    }
    const layer = secret.manifest.layers[0]!;
    const codes: string[] = [];
    for (const digest of [secretDigest, missingDigest]) {
      const manifest = { ...evesModel.manifest, layers: [{ ...layer, digest }] };
      const put = await errorOf(await r.request("/v2/eve/mine/manifests/stolen", { method: "PUT", headers: bearer(eve, { "Content-Type": MediaType.manifestV2 }), body: JSON.stringify(manifest) }));
      assert.equal(put.status, 400);
      codes.push(put.code);
    }
    assert.deepEqual(codes, ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]);
    assert.equal((await r.request(`/v2/eve/mine/blobs/${secretDigest}`, { method: "HEAD", headers: bearer(eve) })).status, 404, "still not linked");
  });

  test("the web catalog neither lists nor finds a private model anonymously, and its page is a 404 like a missing one", async () => {
    for (const q of ["secret", "alice/secret", "alice"]) {
      const html = await (await r.request(`/?q=${encodeURIComponent(q)}`)).text();
      assert.ok(!html.includes('href="/alice/secret"'), `search ${q}: no link to the model`);
      if (q !== "alice") assert.match(html, />0 models</, `search ${q}: no result`);
    }
    assert.ok(!(await (await r.request("/")).text()).includes("alice/secret"), "home page");
    assert.ok(!(await (await r.request("/alice")).text()).includes("secret"), "namespace page");
    const page = await r.request("/alice/secret");
    const missing = await r.request("/alice/nothing");
    assert.equal(page.status, 404);
    assert.equal(page.status, missing.status);
  });
});

describe("rate limiting of the token and login-link endpoints", () => {
  let limited: InProcess;
  let app: ReturnType<typeof createApp>;
  const k1 = generateKeyPair();
  const k2 = generateKeyPair();
  const k3 = generateKeyPair();

  before(async () => {
    limited = await startInProcess({ REGISTRY_TOKEN_RATE: "3" });
    const admin = directAdmin(limited.registry);
    await admin.addUser("one", [formatPublicKeyLine(k1.publicKey)]);
    await admin.addUser("two", [formatPublicKeyLine(k2.publicKey)]);
    await admin.addUser("three", [formatPublicKeyLine(k3.publicKey)]);
    app = createApp(limited.registry);
  });
  after(async () => limited?.close());

  /** A request as the Node server hands it over: the raw request line and the peer's address. */
  function from(address: string, url: string, init: RequestInit = {}): Promise<Response> {
    const u = new URL(url);
    return Promise.resolve(app.request(url, init, { incoming: { url: `${u.pathname}${u.search}`, socket: { remoteAddress: address } } } as never));
  }
  function signedToken(address: string, key: KeyPair): Promise<Response> {
    const url = tokenURL("repository:one/m:pull");
    return from(address, url, { headers: { Authorization: signedAuthorization(key, tokenRequestChallenge(url)) } });
  }

  test("per address: the burst passes, the next gets 429 TOOMANYREQUESTS with Retry-After; other addresses are unaffected", async () => {
    for (let i = 0; i < 3; i++) assert.equal((await from("10.0.0.1", tokenURL("repository:one/m:pull"))).status, 200);
    const res = await from("10.0.0.1", tokenURL("repository:one/m:pull"));
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "20", "3 a minute: one every 20 s");
    const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
    assert.equal(body.errors[0]!.code, "TOOMANYREQUESTS");
    assert.match(body.errors[0]!.message, /address/);
    assert.equal((await from("10.0.0.2", tokenURL("repository:one/m:pull"))).status, 200);
  });

  test("per key: one key spread over many addresses is limited; forged requests naming the key do not spend its budget", async () => {
    // Signed by k2 but claiming k1's public key: the signature fails before k1 is charged.
    for (let i = 0; i < 5; i++) {
      const url = tokenURL("repository:one/m:pull");
      const forged = signedAuthorization(k2, tokenRequestChallenge(url)).split(":");
      const claimK1 = signedAuthorization(k1, tokenRequestChallenge(url)).split(":");
      const res = await from(`10.1.0.${i}`, url, { headers: { Authorization: `${claimK1[0]}:${forged[1]}` } });
      assert.equal(res.status, 401);
    }
    for (let i = 0; i < 3; i++) assert.equal((await signedToken(`10.2.0.${i}`, k1)).status, 200, `k1 #${i + 1}`);
    const res = await signedToken("10.2.0.9", k1);
    assert.equal(res.status, 429);
    assert.match(((await res.json()) as { errors: Array<{ message: string }> }).errors[0]!.message, /key/);
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    assert.equal((await signedToken("10.2.0.10", k2)).status, 200, "another key is unaffected");
  });

  test("the login-link endpoint shares the limit", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const url = `${BASE}/-/login/links?${encodeQuery([
        ["nonce", newNonce()],
        ["ts", String(Math.floor(Date.now() / 1000))],
      ])}`;
      statuses.push((await from("10.3.0.1", url, { method: "POST", headers: { Authorization: signedAuthorization(k3, `POST,${url},${EMPTY_BODY_HASH}`) } })).status);
    }
    assert.deepEqual(statuses, [201, 201, 201, 429]);
  });

  test("the bucket refills at the configured rate, stays bounded in size, and 0 turns it off", () => {
    const b = new TokenBuckets(3, 100);
    const t0 = 1_000_000;
    assert.deepEqual([b.take("c", t0), b.take("c", t0), b.take("c", t0)], [0, 0, 0]);
    assert.equal(b.take("c", t0), 20);
    assert.equal(b.take("c", t0 + 10_000), 10, "half a token back after 10 s");
    assert.equal(b.take("c", t0 + 20_000), 0, "a whole one after 20 s");
    for (let i = 0; i < 1000; i++) b.take(`client-${i}`, t0);
    assert.equal(b.size, 100);
    const off = new TokenBuckets(0);
    for (let i = 0; i < 1000; i++) assert.equal(off.take("c"), 0);
  });
});
