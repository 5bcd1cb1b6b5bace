// What brings people back to the catalog, in process (PGlite in memory, filesystem blobs): pull
// counts from manifest GETs by tag (not HEAD, not by digest, not page views), written additively so
// replicas add up; capability badges from templates and GGUF headers; sizes and quantizations on
// the cards; the run command; search ranked by name, then description, then pulls.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { GGUFValueType, readGGUFHeader, writeGGUF } from "@corral/shared/gguf/index";
import { pullCounts } from "../src/db/schema.ts";
import { directAdmin } from "../src/services/admin.ts";
import { findAccount } from "../src/services/accounts.ts";
import { updateModelSettings } from "../src/services/catalog.ts";
import { PullCounter } from "../src/services/pull-counts.ts";
import { bearer, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { Browser, stories260KPath, storiesModel } from "./support/web-client.ts";

const alice = generateKeyPair();
const bob = generateKeyPair();
let r: InProcess;
let work: string;
const anon = () => new Browser(r);

const TOOLS_TEMPLATE = "{{ if .Tools }}[AVAILABLE_TOOLS] {{ json .Tools }}[/AVAILABLE_TOOLS]{{ end }}{{ .Prompt }}";
const THINKING_TEMPLATE = "{{ range .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}{{ end }}";

/** stories260K with `llama.pooling_type` added: what an embedding model's header says. */
async function embeddingGGUF(): Promise<Buffer> {
  const h = await readGGUFHeader(stories260KPath);
  const out = join(work, "embed.gguf");
  await writeGGUF(out, {
    kv: [...h.kv.values(), { key: "llama.pooling_type", type: GGUFValueType.UINT32, value: 1 }],
    tensors: h.tensors.map((t) => ({ ...t, source: { path: stories260KPath, offset: h.dataOffset + t.offset, size: t.size } })),
  });
  return readFileSync(out);
}

const names = (html: string): string[] => [...html.matchAll(/<h3><a href="\/([^"]+)">/g)].map((m) => m[1]!);

/** The `<li>` card of a model in a list page. */
function card(html: string, path: string): string {
  const start = html.indexOf(`<h3><a href="/${path}">`);
  assert.ok(start >= 0, `no card for ${path}`);
  const end = html.indexOf("</ul></li>", start);
  return html.slice(start, end < 0 ? undefined : end);
}
const capabilities = (html: string): string[] => [...html.matchAll(/data-capability="([a-z]+)"/g)].map((m) => m[1]!);
const pullsOn = (html: string): string | undefined => /data-(?:fact|card)="pulls"[^>]*>(?:<svg[\s\S]*?<\/svg>)?([^<]*)</.exec(html)?.[1];

before(async () => {
  work = mkdtempSync(join(tmpdir(), "web-pulls-"));
  r = await startInProcess();
  const admin = directAdmin(r.registry);
  await admin.addUser("alice", [formatPublicKeyLine(alice.publicKey)]);
  await admin.addUser("bob", [formatPublicKeyLine(bob.publicKey)]);
  await admin.createOrg("team", "alice");
  const repos = ["story", "storybook", "story-teller", "my-story", "tales", "toolbox", "thinker", "embedder", "seer"];
  const token = await r.token(alice, repos.map((m) => `repository:alice/${m}:pull,push`).join(" ") + " repository:team/secret-story:pull,push");
  const plain = storiesModel();
  for (const repo of ["story", "storybook", "story-teller", "my-story", "tales"]) await pushModel(r, token, { repo: `alice/${repo}`, tag: "latest", model: plain });
  await pushModel(r, token, { repo: "alice/storybook", tag: "v2", model: plain });
  await pushModel(r, token, { repo: "alice/toolbox", tag: "latest", model: storiesModel({ template: TOOLS_TEMPLATE }) });
  await pushModel(r, token, { repo: "alice/thinker", tag: "latest", model: storiesModel({ template: THINKING_TEMPLATE }) });
  await pushModel(r, token, { repo: "alice/embedder", tag: "latest", model: storiesModel({ model: await embeddingGGUF() }) });
  await pushModel(r, token, { repo: "alice/seer", tag: "latest", model: storiesModel({ projector: Buffer.from("a projector's bytes") }) });
  await pushModel(r, token, { repo: "team/secret-story", tag: "latest", model: plain });
  for (const repo of repos) await admin.setVisibility(`alice/${repo}`, "public");
  const owner = await findAccount(r.registry.db, "alice");
  await updateModelSettings(r.registry, { viewer: owner, ns: "alice", model: "tales" }, { description: "A story collection for bedtime." });
});
after(async () => {
  await r?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function pull(repo: string, ref: string, method = "GET"): Promise<number> {
  const token = await r.token(bob, `repository:${repo}:pull`);
  const res = await r.request(`/v2/${repo}/manifests/${ref}`, { method, headers: bearer(token) });
  await res.arrayBuffer();
  return res.status;
}

describe("pull counts", () => {
  test("a GET by tag counts for the tag and the model; HEAD, GET by digest and page views do not", async () => {
    const before = await anon().get("/alice/storybook");
    assert.equal(pullsOn(before.html), "0 pulls");
    for (let i = 0; i < 3; i++) assert.equal(await pull("alice/storybook", "latest"), 200);
    assert.equal(await pull("alice/storybook", "v2"), 200);
    assert.equal(await pull("alice/storybook", "latest", "HEAD"), 200);
    const digest = /manifest <code>(sha256:[0-9a-f]{64})<\/code>/.exec((await anon().get("/alice/storybook/tags/latest")).html)?.[1];
    assert.ok(digest, "the tag page names its manifest");
    assert.equal(await pull("alice/storybook", digest), 200);
    assert.equal(await pull("alice/storybook", "missing"), 404);
    for (let i = 0; i < 5; i++) await anon().get("/alice/storybook");

    const page = await anon().get("/alice/storybook");
    assert.equal(pullsOn(page.html), "4 pulls", "unwritten counts show at once");
    assert.match(page.html, /data-tag-pulls="latest">3</);
    assert.match(page.html, /data-tag-pulls="v2">1</);
    assert.equal(pullsOn((await anon().get("/alice/storybook/tags/latest")).html), "3 pulls");
    assert.equal(pullsOn(card((await anon().get("/alice")).html, "alice/storybook")), "4 pulls");
  });

  test("counts are written as additions: two processes on one database add up", async () => {
    await r.registry.pulls.flush();
    const db = r.registry.db;
    const [repo] = await db.select({ n: pullCounts.count }).from(pullCounts).where(eq(pullCounts.tag, "latest"));
    assert.equal(Number(repo?.n), 3);
    // A second registry process on the same database: its own counter, the same rows.
    const replica = new PullCounter(db);
    const storybookId = (await db.select({ id: pullCounts.repositoryId }).from(pullCounts).where(eq(pullCounts.tag, "v2")))[0]!.id;
    replica.count(storybookId, "latest");
    replica.count(storybookId, "latest");
    assert.equal(await pull("alice/storybook", "latest"), 200);
    await Promise.all([replica.close(), r.registry.pulls.flush()]);
    const rows = await db.select({ tag: pullCounts.tag, n: pullCounts.count }).from(pullCounts).where(eq(pullCounts.repositoryId, storybookId));
    assert.deepEqual(Object.fromEntries(rows.map((x) => [x.tag, Number(x.n)])), { latest: 6, v2: 1 });
    assert.equal(pullsOn((await anon().get("/alice/storybook")).html), "7 pulls");
  });

  test("a private model's pulls are not shown to those who cannot see it", async () => {
    assert.equal(await pull("team/secret-story", "latest"), 401, "bob is no member: refused, not counted");
    const token = await r.token(alice, "repository:team/secret-story:pull");
    assert.equal((await r.request("/v2/team/secret-story/manifests/latest", { headers: bearer(token) })).status, 200);
    assert.equal((await anon().get("/team/secret-story")).status, 404);
    assert.ok(!names((await anon().get("/?q=secret")).html).includes("team/secret-story"));
    const member = new Browser(r);
    await member.signIn(alice);
    assert.equal(pullsOn((await member.get("/team/secret-story")).html), "1 pull");
  });
});

describe("badges, cards and commands", () => {
  test("capability badges from the template, the GGUF header and the layers", async () => {
    const want: Record<string, string[]> = {
      "alice/story": ["completion"],
      "alice/toolbox": ["completion", "tools"],
      "alice/thinker": ["completion", "thinking"],
      "alice/embedder": ["embedding"],
      "alice/seer": ["completion", "vision"],
    };
    for (const [path, caps] of Object.entries(want)) {
      const page = await anon().get(`/${path}`);
      const top = page.html.slice(0, page.html.indexOf('id="pull-command"'));
      assert.deepEqual(capabilities(top), caps, `${path} page`);
      assert.deepEqual(capabilities((await anon().get(`/${path}/tags/latest`)).html.split('id="pull-command"')[0]!), caps, `${path} tag page`);
    }
    const list = (await anon().get("/alice")).html;
    for (const [path, caps] of Object.entries(want)) assert.deepEqual(capabilities(card(list, path)), caps, `${path} card`);
  });

  test("cards show the default tag's size, quantization and parameters", async () => {
    const c = card((await anon().get("/")).html, "alice/embedder");
    assert.match(c, /data-card-tag="latest"/);
    assert.match(c, /data-card="size">1\.2 MB</);
    assert.match(c, /data-card="quantization">F32</);
    assert.match(c, /data-parameters="default"[^>]*>293K</);
  });

  test("the model and tag pages show the run command beside the pull command", async () => {
    const page = await anon().get("/alice/story");
    assert.match(page.html, /id="pull-command"[^>]*>corral pull registry\.test\/alice\/story:latest --insecure</);
    assert.match(page.html, /id="run-command"[^>]*>corral run registry\.test\/alice\/story:latest --insecure</);
    assert.match(page.html, /data-copy="run-command"/);
    const tag = await anon().get("/alice/storybook/tags/v2");
    assert.match(tag.html, /id="run-command"[^>]*>corral run registry\.test\/alice\/storybook:v2 --insecure</);
  });
});

describe("search ranking", () => {
  test("exact name, name prefix, name contains, then description; pulls break ties, then recency", async () => {
    assert.deepEqual(names((await anon().get("/?q=story")).html), ["alice/story", "alice/storybook", "alice/story-teller", "alice/my-story", "alice/tales"]);
    // Pulls reorder within a tier only.
    for (let i = 0; i < 9; i++) assert.equal(await pull("alice/story-teller", "latest"), 200);
    assert.deepEqual(names((await anon().get("/?q=story")).html), ["alice/story", "alice/story-teller", "alice/storybook", "alice/my-story", "alice/tales"]);
    assert.deepEqual(names((await anon().get("/?q=alice/story")).html)[0], "alice/story", "the full path is an exact match");
    assert.deepEqual(names((await anon().get("/?q=bedtime")).html), ["alice/tales"]);
    assert.deepEqual(names((await anon().get("/?q=%25%25%25")).html), [], "LIKE wildcards are text");
  });
});
