// Signed requests (Ollama's token request, and the login-link request `corral login` makes) count
// only when they were signed for one of this registry's own URLs. A hostile registry the user pulls
// from receives a correctly signed request for its own URL; relayed here with its own Host (or with
// ours) it must get nothing, and must not use up the nonce of the user's genuine request either.
// Challenges, Location headers and login links name the URL the client reached the registry under,
// when that is one of its URLs.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { EMPTY_BODY_HASH, encodeQuery, formatPublicKeyLine, generateKeyPair, newNonce, signedAuthorization, tokenRequestChallenge, tokenRequestURL } from "@corral/shared/signing";
import { directAdmin } from "../src/services/admin.ts";
import { BASE, bearer, startInProcess, type InProcess } from "./support/in-process.ts";

const alice = generateKeyPair();
const ALIAS = "http://alias.example";
const TLS_ALIAS = "https://alias2.example:8443";
/** The team registry as configured with REGISTRY_URL only. */
let r: InProcess;
/** The same with REGISTRY_EXTRA_URLS naming two more names it is reached under. */
let aliased: InProcess;

const now = (): number => Math.floor(Date.now() / 1000);

function tokenURL(base: string, nonce = newNonce(), scope = "repository:alice/secret:pull,push"): string {
  return tokenRequestURL({ realm: `${base}/v2/token`, service: new URL(base).host, scope, ts: now(), nonce });
}

function loginURL(base: string, nonce = newNonce()): string {
  return `${base}/-/login/links?${encodeQuery([
    ["nonce", nonce],
    ["ts", String(now())],
  ])}`;
}

/** `url` sent to the registry as a client that reached it as `host` would send it. */
function signedGet(target: InProcess, url: string, host: string, signedFor = url): Promise<Response> {
  const sent = new URL(url);
  return target.request(`http://${host}${sent.pathname}${sent.search}`, { headers: { Host: host, Authorization: signedAuthorization(alice, tokenRequestChallenge(signedFor)) } });
}

function signedPost(target: InProcess, url: string, host: string, signedFor = url): Promise<Response> {
  const sent = new URL(url);
  return target.request(`http://${host}${sent.pathname}${sent.search}`, {
    method: "POST",
    headers: { Host: host, Authorization: signedAuthorization(alice, `POST,${signedFor},${EMPTY_BODY_HASH}`) },
  });
}

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { errors: Array<{ code: string; message: string }> };
    return { status: res.status, code: body.errors[0]!.code, message: body.errors[0]!.message };
  } catch {
    return { status: res.status, code: "", message: text };
  }
}

before(async () => {
  r = await startInProcess();
  aliased = await startInProcess({ REGISTRY_EXTRA_URLS: `${ALIAS}, ${TLS_ALIAS}/` });
  for (const reg of [r, aliased]) await directAdmin(reg.registry).addUser("alice", [formatPublicKeyLine(alice.publicKey)]);
});
after(async () => {
  await r?.close();
  await aliased?.close();
});

describe("a signed request relayed from another registry", () => {
  test("a token request signed for evil.example and sent with Host evil.example is refused, and its nonce stays unused", async () => {
    const nonce = newNonce();
    const relayed = await errorOf(await signedGet(r, tokenURL("http://evil.example", nonce), "evil.example"));
    assert.deepEqual([relayed.status, relayed.code], [401, "UNAUTHORIZED"], relayed.message);
    assert.equal(
      relayed.message,
      "signed requests are accepted only for this registry's URL http://registry.test (this one came for host evil.example); if clients reach the registry under that name, add it to REGISTRY_EXTRA_URLS",
    );
    // The user's own request with that nonce (signed for this registry) still gets its token.
    const genuine = await signedGet(r, tokenURL(BASE, nonce), "registry.test");
    assert.equal(genuine.status, 200, await genuine.clone().text());
    const { token } = (await genuine.json()) as { token: string };
    const upload = await r.request("/v2/alice/secret/blobs/uploads/", { method: "POST", headers: bearer(token) });
    assert.equal(upload.status, 202, "the genuine token carries push");
  });

  test("the same request sent with this registry's Host matches none of its URLs, and its nonce stays unused", async () => {
    const nonce = newNonce();
    const evil = tokenURL("http://evil.example", nonce);
    const relayed = await errorOf(await signedGet(r, evil, "registry.test"));
    assert.deepEqual([relayed.status, relayed.code], [401, "UNAUTHORIZED"]);
    assert.match(relayed.message, /the signature does not match this request/);
    assert.equal((await signedGet(r, tokenURL(BASE, nonce), "registry.test")).status, 200);
  });

  test("a login-link request signed for evil.example and sent with Host evil.example is refused, and its nonce stays unused", async () => {
    const nonce = newNonce();
    const relayed = await errorOf(await signedPost(r, loginURL("http://evil.example", nonce), "evil.example"));
    assert.deepEqual([relayed.status, relayed.code], [401, "UNAUTHORIZED"], relayed.message);
    assert.match(relayed.message, /^signed requests are accepted only for this registry's URL http:\/\/registry\.test \(this one came for host evil\.example\)/);
    const viaOurHost = await errorOf(await signedPost(r, loginURL("http://evil.example", nonce), "registry.test"));
    assert.deepEqual([viaOurHost.status, viaOurHost.message], [401, "the signature does not match this request"]);
    const genuine = await signedPost(r, loginURL(BASE, nonce), "registry.test");
    assert.equal(genuine.status, 201, await genuine.clone().text());
    assert.match(((await genuine.json()) as { url: string }).url, /^http:\/\/registry\.test\/-\/login\//);
  });

  test("an unsigned request with a foreign Host is challenged with this registry's own realm", async () => {
    const res = await r.request("http://evil.example/v2/alice/secret/manifests/latest", { headers: { Host: "evil.example" } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), `Bearer realm="${BASE}/v2/token",service="registry.test",scope="repository:alice/secret:pull"`);
  });
});

describe("the registry's own URLs", () => {
  test("a request signed for the primary URL works, also when the Host names the default port", async () => {
    assert.equal((await signedGet(r, tokenURL(BASE), "registry.test")).status, 200);
    assert.equal((await signedGet(r, tokenURL(BASE), "registry.test:80")).status, 200);
    assert.equal((await signedGet(aliased, tokenURL(BASE), "registry.test")).status, 200);
  });

  test("REGISTRY_EXTRA_URLS: a request signed for an alias and sent to it works; its challenge, Location and links name the alias", async () => {
    const ok = await signedGet(aliased, tokenURL(ALIAS), "alias.example");
    assert.equal(ok.status, 200, await ok.clone().text());
    const { token } = (await ok.json()) as { token: string };
    // One audience per registry: the alias's token is good under every name.
    for (const [host, base] of [
      ["alias.example", ALIAS],
      ["registry.test", BASE],
    ] as const) {
      const upload = await aliased.request(`http://${host}/v2/alice/secret/blobs/uploads/`, { method: "POST", headers: bearer(token, { Host: host }) });
      assert.equal(upload.status, 202, await upload.text());
      assert.match(upload.headers.get("location") ?? "", new RegExp(`^${base}/v2/alice/secret/blobs/uploads/`));
    }
    const challenged = await aliased.request("http://alias.example/v2/alice/secret/manifests/latest", { headers: { Host: "alias.example" } });
    assert.equal(challenged.status, 401);
    assert.equal(challenged.headers.get("www-authenticate"), `Bearer realm="${ALIAS}/v2/token",service="registry.test",scope="repository:alice/secret:pull"`);

    const tls = await signedGet(aliased, tokenURL(TLS_ALIAS), "alias2.example:8443");
    assert.equal(tls.status, 200, await tls.clone().text());
    const tlsChallenge = await aliased.request("http://alias2.example:8443/v2/alice/secret/manifests/latest", { headers: { Host: "alias2.example:8443" } });
    assert.match(tlsChallenge.headers.get("www-authenticate") ?? "", new RegExp(`^Bearer realm="${TLS_ALIAS}/v2/token",service="registry.test"`));

    const link = await signedPost(aliased, loginURL(ALIAS), "alias.example");
    assert.equal(link.status, 201, await link.clone().text());
    assert.match(((await link.json()) as { url: string }).url, /^http:\/\/alias\.example\/-\/login\//);
  });

  test("REGISTRY_EXTRA_URLS: the refusal lists every URL; a signature for an alias under another scheme matches none", async () => {
    const relayed = await errorOf(await signedGet(aliased, tokenURL("http://evil.example"), "evil.example"));
    assert.equal(relayed.status, 401);
    assert.match(relayed.message, /^signed requests are accepted only for this registry's URLs http:\/\/registry\.test, http:\/\/alias\.example, https:\/\/alias2\.example:8443 \(this one came for host evil\.example\)/);
    const wrongScheme = await errorOf(await signedGet(aliased, tokenURL("https://alias.example"), "alias.example"));
    assert.deepEqual([wrongScheme.status, wrongScheme.message], [401, "the signature does not match this request"]);
  });
});
