// Signing in to the web catalog without passwords, and what a signed-in owner may change: the
// signed link request (`corral login`), one-time links, session cookies, CSRF and origin checks,
// sign-out, sessions ending with their key, owners editing a model, organisation owners managing
// members.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { fingerprint, formatPublicKeyLine, generateKeyPair, newNonce } from "@corral/shared/signing";
import { loginLinks, repositories } from "../src/db/schema.ts";
import { directAdmin } from "../src/services/admin.ts";
import { BASE, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { Browser, requestLoginLink, storiesModel } from "./support/web-client.ts";

const keys = { alice: generateKeyPair(), bob: generateKeyPair(), carol: generateKeyPair(), stranger: generateKeyPair(), alice2: generateKeyPair() };
let r: InProcess;

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
  return { status: res.status, code: body.errors[0]!.code, message: body.errors[0]!.message };
}

const signedInAs = (html: string): string | undefined => /Signed in as <a href="\/[^"]+">([^<]+)<\/a>/.exec(html)?.[1];

before(async () => {
  r = await startInProcess();
  const admin = directAdmin(r.registry);
  await admin.addUser("alice", [formatPublicKeyLine(keys.alice.publicKey), formatPublicKeyLine(keys.alice2.publicKey)]);
  await admin.addUser("bob", [formatPublicKeyLine(keys.bob.publicKey)]);
  await admin.addUser("carol", [formatPublicKeyLine(keys.carol.publicKey)]);
  await admin.createOrg("team", "alice");
  await admin.addMember("team", "bob", "writer");
  const token = await r.token(keys.alice, "repository:alice/story:pull,push repository:team/bot:pull,push");
  await pushModel(r, token, { repo: "alice/story", tag: "latest", model: storiesModel() });
  await pushModel(r, token, { repo: "team/bot", tag: "latest", model: storiesModel() });
});
after(async () => r?.close());

describe("the login link request", () => {
  test("a registered key gets a one-time link naming its account", async () => {
    const asked = Date.now();
    const res = await requestLoginLink(r, keys.alice);
    assert.equal(res.status, 201);
    const body = (await res.json()) as { url: string; account: string; key: string; expires_at: string };
    assert.match(body.url, new RegExp(`^${BASE}/-/login/[A-Za-z0-9_-]{43}$`));
    assert.equal(body.account, "alice");
    assert.equal(body.key, fingerprint(keys.alice.publicKey));
    // Ten minutes from when the link was made, which was while it was asked for (the second
    // allows for rounding in the answer).
    const expires = Date.parse(body.expires_at);
    assert.ok(expires >= asked + 10 * 60_000 - 1000 && expires <= Date.now() + 10 * 60_000, `${body.expires_at}, asked at ${new Date(asked).toISOString()}`);
    const stored = await r.registry.db.select().from(loginLinks);
    assert.ok(stored.every((l) => !body.url.includes(l.tokenHash)), "only a hash of the secret is stored");
  });

  test("refused: unsigned, unregistered key, GET signature, replayed nonce, old timestamp", async () => {
    assert.equal((await errorOf(await r.request("/-/login/links", { method: "POST" }))).code, "UNAUTHORIZED");
    const stranger = await errorOf(await requestLoginLink(r, keys.stranger));
    assert.equal(stranger.status, 403);
    assert.ok(stranger.message.includes(fingerprint(keys.stranger.publicKey)), stranger.message);
    assert.match(stranger.message, /not registered on registry\.test/);
    // A token request's signature (GET) cannot be replayed as a login request.
    const get = await errorOf(await requestLoginLink(r, keys.alice, { method: "GET" }));
    assert.deepEqual([get.status, get.message], [401, "the signature does not match this request"]);
    const nonce = newNonce();
    assert.equal((await requestLoginLink(r, keys.alice, { nonce })).status, 201);
    const replay = await errorOf(await requestLoginLink(r, keys.alice, { nonce }));
    assert.match(replay.message, /already used/);
    const old = await errorOf(await requestLoginLink(r, keys.alice, { ts: Math.floor(Date.now() / 1000) - 3600 }));
    assert.match(old.message, /timestamp/);
  });
});

describe("links and sessions", () => {
  test("opening the link asks to confirm; confirming signs in with an HttpOnly SameSite cookie; the link works once", async () => {
    const { url } = (await (await requestLoginLink(r, keys.alice)).json()) as { url: string };
    const path = new URL(url).pathname;
    const b = new Browser(r);
    const confirm = await b.get(path);
    assert.equal(confirm.status, 200);
    assert.match(confirm.html, /Sign in as alice\?/);
    assert.equal(confirm.res.headers.get("referrer-policy"), "same-origin", "the link does not leak to other sites through Referer");
    assert.equal((await b.get(path)).status, 200, "viewing does not use the link up");
    const res = await b.post(path, {});
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/alice");
    const cookie = res.headers.get("set-cookie") ?? "";
    assert.match(cookie, /^corral_session=[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.match(cookie, /Path=\//);
    assert.equal(signedInAs((await b.get("/")).html), "alice");

    const again = new Browser(r);
    assert.equal((await again.post(path, {})).status, 404, "a used link is dead");
    assert.equal(again.cookie, undefined);
    assert.equal((await again.get(path)).status, 404);
  });

  test("an expired link does nothing", async () => {
    const { url } = (await (await requestLoginLink(r, keys.bob)).json()) as { url: string };
    // Every link (bob's is the only one) expires.
    // eslint-disable-next-line drizzle/enforce-update-with-where
    await r.registry.db.update(loginLinks).set({ expiresAt: new Date(Date.now() - 1000) });
    const b = new Browser(r);
    assert.equal((await b.post(new URL(url).pathname, {})).status, 404);
    assert.equal(b.cookie, undefined);
  });

  test("a link opened from another site's form is refused", async () => {
    const { url } = (await (await requestLoginLink(r, keys.bob)).json()) as { url: string };
    const b = new Browser(r);
    assert.equal((await b.post(new URL(url).pathname, {}, { Origin: "http://evil.test" })).status, 403);
    assert.equal((await b.post(new URL(url).pathname, {}, { Origin: "null", "Sec-Fetch-Site": "cross-site" })).status, 403);
    assert.equal(b.cookie, undefined);
    // The same link from this origin's own page still works.
    assert.equal((await b.post(new URL(url).pathname, {}, { Origin: "null", "Sec-Fetch-Site": "same-origin" })).status, 303);
  });

  test("sign-out needs the CSRF token and ends the session on the server", async () => {
    const b = new Browser(r);
    await b.signIn(keys.bob);
    const home = await b.get("/");
    assert.equal(signedInAs(home.html), "bob");
    assert.equal((await b.post("/-/logout", {})).status, 403, "no token");
    assert.equal((await b.post("/-/logout", { _csrf: "x".repeat(43) })).status, 403, "wrong token");
    assert.equal(signedInAs((await b.get("/")).html), "bob", "still signed in");
    const stolen = b.cookie;
    const out = await b.post("/-/logout", { _csrf: Browser.csrf(home.html) });
    assert.equal(out.status, 303);
    assert.match(out.headers.get("set-cookie") ?? "", /corral_session=;.*Max-Age=0/);
    const replay = new Browser(r);
    replay.cookie = stolen;
    assert.equal(signedInAs((await replay.get("/")).html), undefined, "the old cookie no longer works");
  });

  test("removing the key that signed in ends its sessions, and only those", async () => {
    const one = new Browser(r);
    await one.signIn(keys.alice2);
    const two = new Browser(r);
    await two.signIn(keys.alice);
    await directAdmin(r.registry).removeKey("alice", fingerprint(keys.alice2.publicKey));
    assert.equal(signedInAs((await one.get("/")).html), undefined);
    assert.equal(signedInAs((await two.get("/")).html), "alice");
  });
});

describe("owners' changes", () => {
  test("an owner edits the description and visibility of a model", async () => {
    const b = new Browser(r);
    await b.signIn(keys.alice);
    const page = await b.get("/alice/story");
    assert.match(page.html, /<summary>Edit model<\/summary>/);
    const res = await b.post("/-/models/alice/story", { _csrf: Browser.csrf(page.html), description: "# Story\r\n\r\nTiny **tales**.", visibility: "public" });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/alice/story?saved=1");
    const after = await b.get("/alice/story?saved=1");
    assert.match(after.html, /Changes saved\./);
    assert.match(after.html, /<strong>tales<\/strong>/);
    const [row] = await r.registry.db.select().from(repositories).where(eq(repositories.name, "story"));
    assert.equal(row?.description, "# Story\n\nTiny **tales**.");
    assert.equal(row?.visibility, "public");
    assert.equal((await new Browser(r).get("/alice/story")).status, 200, "anonymous visitors see it now");
    assert.equal((await r.request("/v2/alice/story/manifests/latest")).status, 200, "and can pull it");
    await b.post("/-/models/alice/story", { _csrf: Browser.csrf(page.html), visibility: "private" });
    assert.equal((await new Browser(r).get("/alice/story")).status, 404);
    assert.equal((await r.request("/v2/alice/story/manifests/latest")).status, 401, "the registry API follows at once");
  });

  test("a writer cannot edit; forms without the token or from another origin change nothing", async () => {
    const bob = new Browser(r);
    await bob.signIn(keys.bob);
    const page = await bob.get("/team/bot");
    assert.equal(page.status, 200);
    assert.ok(!page.html.includes("Edit model"), "no edit form for a writer");
    const denied = await bob.post("/-/models/team/bot", { _csrf: Browser.csrf(page.html), visibility: "public" });
    assert.equal(denied.status, 404);
    assert.match(await denied.text(), /only owners of team can change this model/);

    const alice = new Browser(r);
    await alice.signIn(keys.alice);
    const csrf = Browser.csrf((await alice.get("/team/bot")).html);
    assert.equal((await alice.post("/-/models/team/bot", { visibility: "public" })).status, 403);
    assert.equal((await alice.post("/-/models/team/bot", { _csrf: csrf, visibility: "public" }, { Origin: "http://evil.test" })).status, 403);
    assert.equal((await alice.post("/-/models/team/bot", { _csrf: csrf, visibility: "public" }, { "Sec-Fetch-Site": "cross-site" })).status, 403);
    assert.equal((await alice.post("/-/models/team/bot", { _csrf: csrf, visibility: "everyone" })).status, 400);
    const [row] = await r.registry.db.select().from(repositories).where(eq(repositories.name, "bot"));
    assert.equal(row?.visibility, "private");
  });

  test("organisation owners add, re-role and remove members; the last owner stays", async () => {
    const alice = new Browser(r);
    await alice.signIn(keys.alice);
    const page = await alice.get("/team");
    assert.match(page.html, /<summary>Add a member<\/summary>/);
    const csrf = Browser.csrf(page.html);
    assert.equal((await alice.post("/-/orgs/team/members", { _csrf: csrf, action: "set", user: "carol", role: "reader" })).status, 303);
    assert.equal((await alice.post("/-/orgs/team/members", { _csrf: csrf, action: "set", user: "bob", role: "owner" })).status, 303);
    let members = (await alice.get("/team")).html;
    assert.match(members, /<a href="\/carol">carol<\/a><\/td><td>reader/);
    assert.match(members, /<a href="\/bob">bob<\/a><\/td><td>owner/);
    assert.equal((await alice.post("/-/orgs/team/members", { _csrf: csrf, action: "remove", user: "carol" })).status, 303);
    assert.equal((await alice.post("/-/orgs/team/members", { _csrf: csrf, action: "set", user: "nobody", role: "reader" })).status, 404);
    // Two owners: alice may step down; then bob is the last and cannot.
    assert.equal((await alice.post("/-/orgs/team/members", { _csrf: csrf, action: "remove", user: "alice" })).status, 303);
    const bob = new Browser(r);
    await bob.signIn(keys.bob);
    const bobCsrf = Browser.csrf((await bob.get("/team")).html);
    const last = await bob.post("/-/orgs/team/members", { _csrf: bobCsrf, action: "set", user: "bob", role: "reader" });
    assert.equal(last.status, 409);
    assert.match(await last.text(), /team must keep at least one owner/);
    members = (await bob.get("/team")).html;
    assert.match(members, /<a href="\/bob">bob<\/a><\/td><td>owner/);
    assert.ok(!members.includes('href="/carol"'));

    // carol is no member any more; alice is not an owner any more: neither can manage.
    const carol = new Browser(r);
    await carol.signIn(keys.carol);
    const carolPage = await carol.get("/team");
    assert.ok(!carolPage.html.includes("Add a member"));
    const refused = await carol.post("/-/orgs/team/members", { _csrf: Browser.csrf(carolPage.html), action: "set", user: "carol", role: "owner" });
    assert.equal(refused.status, 404);
  });
});
