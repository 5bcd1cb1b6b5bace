// The web catalog's SQL on real PostgreSQL (the other suites use PGlite): the migration, search by
// name and description words, facts cached in jsonb, private models, sign-in and an owner's edit.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { formatPublicKeyLine, generateKeyPair, newNonce, signedAuthorization, tokenRequestChallenge, tokenRequestURL } from "@corral/shared/signing";
import { ensurePostgres, startPostgres, type Postgres } from "../../../test/helpers/postgres.ts";
import { createApp } from "../src/app.ts";
import { openPostgres } from "../src/db/open.ts";
import { openRegistry } from "../src/registry.ts";
import { directAdmin } from "../src/services/admin.ts";
import { findAccount } from "../src/services/accounts.ts";
import { updateModelSettings } from "../src/services/catalog.ts";
import { testConfig } from "./support/fixtures.ts";
import { BASE, pushModel, type InProcess } from "./support/in-process.ts";
import { Browser, storiesModel } from "./support/web-client.ts";

const pgAvailable = !("skip" in ensurePostgres());
const skip = !pgAvailable && "PostgreSQL cannot be installed here";
const alice = generateKeyPair();
const bob = generateKeyPair();
let pg: Postgres | undefined;
let r: InProcess;
let url: string;

before(async () => {
  if (!pgAvailable) return;
  pg = await startPostgres();
  const t = testConfig({ REGISTRY_URL: BASE });
  url = await pg.createDatabase("web_catalog");
  const registry = await openRegistry(t.config, { db: await openPostgres(url) });
  const app = createApp(registry);
  const request = async (path: string, init?: RequestInit): Promise<Response> => app.request(path.startsWith("http") ? path : `${BASE}${path}`, init);
  r = {
    registry,
    request,
    async token(key, scope) {
      const url = tokenRequestURL({ realm: `${BASE}/v2/token`, service: "registry.test", scope, ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
      const res = await request(url, key ? { headers: { Authorization: signedAuthorization(key, tokenRequestChallenge(url)) } } : {});
      return ((await res.json()) as { token: string }).token;
    },
    async close() {
      await registry.close();
      t.cleanup();
    },
  };
  const admin = directAdmin(registry);
  await admin.addUser("alice", [formatPublicKeyLine(alice.publicKey)]);
  await admin.addUser("bob", [formatPublicKeyLine(bob.publicKey)]);
  await admin.createOrg("lab", "alice");
  const token = await r.token(alice, "repository:lab/storyteller:pull,push repository:lab/hidden:pull,push repository:lab/story:pull,push repository:lab/tales:pull,push");
  await pushModel(r, token, { repo: "lab/storyteller", tag: "latest", model: storiesModel() });
  await pushModel(r, token, { repo: "lab/hidden", tag: "latest", model: storiesModel() });
  await pushModel(r, token, { repo: "lab/story", tag: "latest", model: storiesModel({ template: "{{ if .Tools }}{{ json .Tools }}{{ end }}{{ .Prompt }}" }) });
  await pushModel(r, token, { repo: "lab/tales", tag: "latest", model: storiesModel() });
  for (const repo of ["lab/storyteller", "lab/story", "lab/tales"]) await admin.setVisibility(repo, "public");
  const owner = await findAccount(registry.db, "alice");
  await updateModelSettings(registry, { viewer: owner, ns: "lab", model: "tales" }, { description: "Every story we know." });
});
after(async () => {
  await r?.close();
  await pg?.stop();
});

const names = (html: string): string[] => [...html.matchAll(/<h3><a href="\/([^"]+)">/g)].map((m) => m[1]!);

test("pages, search and sign-in on PostgreSQL", { skip }, async () => {
  const anon = new Browser(r);
  const page = await anon.get("/lab/storyteller");
  assert.equal(page.status, 200);
  assert.match(page.html, /data-fact="architecture">llama</);
  assert.match(page.html, /data-fact="context-length">2,048</);
  assert.deepEqual(names((await anon.get("/?q=story")).html), ["lab/story", "lab/storyteller", "lab/tales"], "exact name, prefix, description");
  assert.deepEqual(names((await anon.get("/")).html).sort(), ["lab/story", "lab/storyteller", "lab/tales"]);
  assert.equal((await anon.get("/lab/hidden")).status, 404);

  const owner = new Browser(r);
  await owner.signIn(alice);
  assert.deepEqual(names((await owner.get("/lab")).html).sort(), ["lab/hidden", "lab/story", "lab/storyteller", "lab/tales"]);
  const form = await owner.get("/lab/hidden");
  const saved = await owner.post("/-/models/lab/hidden", { _csrf: Browser.csrf(form.html), description: "Answers questions about quarterly invoices." });
  assert.equal(saved.status, 303);
  assert.deepEqual(names((await owner.get("/?q=invoice")).html), ["lab/hidden"], "description words, by prefix");
  assert.deepEqual(names((await anon.get("/?q=invoice")).html), [], "not for anonymous visitors");

  const other = new Browser(r);
  await other.signIn(bob);
  assert.equal((await other.get("/lab/hidden")).status, 404, "bob is no member of lab");
});

test("pull counts from two registry processes on one database add up; cards and badges on PostgreSQL", { skip }, async () => {
  const t = testConfig({ REGISTRY_URL: BASE });
  const replica = await openRegistry(t.config, { db: await openPostgres(url) });
  try {
    const replicaApp = createApp(replica);
    const token = await r.token(bob, "repository:lab/tales:pull");
    const get = (request: (p: string, i?: RequestInit) => Promise<Response>) => request(`${BASE}/v2/lab/tales/manifests/latest`, { headers: { Authorization: `Bearer ${token}` } });
    for (let i = 0; i < 3; i++) assert.equal((await get(r.request)).status, 200);
    for (let i = 0; i < 4; i++) assert.equal((await get((p, i2) => Promise.resolve(replicaApp.request(p, i2)))).status, 200);
    await Promise.all([r.registry.pulls.flush(), replica.pulls.flush()]);
    const anon = new Browser(r);
    const page = await anon.get("/lab/tales");
    assert.match(page.html, /data-fact="pulls"[^>]*>(<svg[\s\S]*?<\/svg>)?7 pulls</);
    assert.deepEqual(names((await anon.get("/?q=st")).html), ["lab/story", "lab/storyteller", "lab/tales"], "a prefix of two names, then the description by pulls");
    const home = (await anon.get("/")).html;
    assert.match(home, /data-capability="tools"/);
    assert.match(home, /data-card="quantization">F32</);
  } finally {
    await replica.close();
    t.cleanup();
  }
});
