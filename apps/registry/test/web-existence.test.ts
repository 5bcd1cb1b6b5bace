// What a signed-in account that is no member learns from the web catalog about models it cannot
// see: the owners' forms, the pages and the search answer for a private model exactly as for a
// missing one. Someone who can see a model but does not own it is told only owners can change it.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { directAdmin } from "../src/services/admin.ts";
import { pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { makeModel } from "./support/fixtures.ts";
import { Browser } from "./support/web-client.ts";

const keys = { alice: generateKeyPair(), bob: generateKeyPair(), carol: generateKeyPair() };
let r: InProcess;
/** carol: signed in, a member of nothing of alice's or team's. */
let carol: Browser;
let carolCsrf: string;

interface Answer {
  status: number;
  location: string | null;
  text: string;
}

/** The answer with `name` written as X, so the answers about two names compare. */
async function answer(res: Response, name: string): Promise<Answer> {
  return answerOf(res, await res.text(), name);
}

function answerOf(res: Response, html: string, name: string): Answer {
  const text = html
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .replaceAll(name, "X");
  return { status: res.status, location: res.headers.get("location"), text };
}

before(async () => {
  r = await startInProcess();
  const admin = directAdmin(r.registry);
  for (const [name, key] of Object.entries(keys)) await admin.addUser(name, [formatPublicKeyLine(key.publicKey)]);
  await admin.createOrg("team", "alice");
  await admin.addMember("team", "bob", "reader");
  const token = await r.token(keys.alice, "repository:alice/private:pull,push repository:alice/open:pull,push repository:team/secret:pull,push");
  await pushModel(r, token, { repo: "alice/private", tag: "latest", model: makeModel(1000) });
  await pushModel(r, token, { repo: "alice/open", tag: "latest", model: makeModel(1000) });
  await pushModel(r, token, { repo: "team/secret", tag: "latest", model: makeModel(1000) });
  await admin.setVisibility("alice/open", "public");
  carol = new Browser(r);
  await carol.signIn(keys.carol);
  carolCsrf = Browser.csrf((await carol.get("/")).html);
});
after(async () => r?.close());

describe("the owners' model form", () => {
  for (const [secret, missing] of [
    ["alice/private", "alice/nothing"],
    ["team/secret", "team/nothing"],
    ["team/secret", "nobody/secret"],
  ] as const) {
    test(`a signed-in outsider gets the same answer for ${secret} (private) as for ${missing} (missing)`, async () => {
      for (const fields of [{ visibility: "public" }, { description: "mine now" }, { visibility: "bogus" }] as Array<Record<string, string>>) {
        const a = await answer(await carol.post(`/-/models/${secret}`, { _csrf: carolCsrf, ...fields }), secret);
        const b = await answer(await carol.post(`/-/models/${missing}`, { _csrf: carolCsrf, ...fields }), missing);
        assert.deepEqual(a, b, JSON.stringify(fields));
        assert.equal(a.status, 404);
        assert.doesNotMatch(a.text, /owner/i, "nothing says the model has owners");
      }
    });
  }

  test("someone who can see a model but does not own it is told so", async () => {
    const bob = new Browser(r);
    await bob.signIn(keys.bob);
    const csrf = Browser.csrf((await bob.get("/")).html);
    const member = await bob.post("/-/models/team/secret", { _csrf: csrf, visibility: "public" });
    assert.equal(member.status, 404);
    assert.match(await member.text(), /only owners of team can change this model/, "a reader of team");
    const outsider = await carol.post("/-/models/alice/open", { _csrf: carolCsrf, visibility: "private" });
    assert.equal(outsider.status, 404);
    assert.match(await outsider.text(), /only owners of alice can change this model/, "a public model");
  });
});

describe("the owners' members form", () => {
  test("a signed-in outsider gets the same answer for an organisation as for a missing one", async () => {
    for (const fields of [
      { action: "set", user: "carol", role: "owner" },
      { action: "set", user: "nobody", role: "reader" },
      { action: "remove", user: "bob" },
      { action: "remove", user: "nobody" },
    ] as Array<Record<string, string>>) {
      const a = await answer(await carol.post("/-/orgs/team/members", { _csrf: carolCsrf, ...fields }), "team");
      const b = await answer(await carol.post("/-/orgs/nosuchorg/members", { _csrf: carolCsrf, ...fields }), "nosuchorg");
      const c = await answer(await carol.post("/-/orgs/alice/members", { _csrf: carolCsrf, ...fields }), "alice");
      assert.deepEqual(a, b, JSON.stringify(fields));
      assert.deepEqual(a, c, `a user's namespace: ${JSON.stringify(fields)}`);
      assert.equal(a.status, 404);
    }
  });

  test("a member who is not an owner is told only owners manage members", async () => {
    const bob = new Browser(r);
    await bob.signIn(keys.bob);
    const csrf = Browser.csrf((await bob.get("/team")).html);
    const res = await bob.post("/-/orgs/team/members", { _csrf: csrf, action: "set", user: "bob", role: "owner" });
    assert.equal(res.status, 404);
    assert.match(await res.text(), /only owners of team can manage its members/);
  });
});

describe("pages and search", () => {
  test("a private model's pages and searches answer as for a missing one", async () => {
    for (const [secret, missing] of [
      ["/alice/private", "/alice/nothing"],
      ["/alice/private/tags/latest", "/alice/nothing/tags/latest"],
      ["/team/secret/tags/latest", "/team/nothing/tags/latest"],
      ["/team/secret", "/team/nothing"],
    ] as const) {
      const a = await carol.get(secret);
      const b = await carol.get(missing);
      assert.deepEqual(answerOf(a.res, a.html, secret.slice(1).replace("/tags/", ":")), answerOf(b.res, b.html, missing.slice(1).replace("/tags/", ":")), secret);
      assert.equal(a.status, 404);
    }
    for (const q of ["private", "alice/private", "secret"]) {
      const page = await carol.get(`/?q=${encodeURIComponent(q)}`);
      assert.ok(!page.html.includes("/alice/private") && !page.html.includes("/team/secret"), q);
    }
  });
});
