// The web catalog's pages in process (PGlite in memory, filesystem blobs), with real GGUF models
// pushed through the registry API: facts read from the GGUF header through ranged store reads and
// cached per digest, tags, layers, Modelfile, search over names and descriptions, private models
// hidden from everyone but members, descriptions rendered without letting HTML through.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { eq } from "drizzle-orm";
import { fingerprint, formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType } from "@corral/shared/manifest";
import { blobFacts } from "../src/db/schema.ts";
import { directAdmin } from "../src/services/admin.ts";
import { blobFactsFor } from "../src/services/model-facts.ts";
import { toTsQuery, updateModelSettings } from "../src/services/catalog.ts";
import { findAccount } from "../src/services/accounts.ts";
import type { BlobStore, ByteRange } from "../src/storage/blob-store.ts";
import { pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { makeModel } from "./support/fixtures.ts";
import { Browser, storiesModel } from "./support/web-client.ts";

const tinyLlamaPath = new URL("../../../test/fixtures/llama-2-tiny-random.gguf", import.meta.url);
const keys = { alice: generateKeyPair(), bob: generateKeyPair(), carol: generateKeyPair() };
let r: InProcess;
const anon = () => new Browser(r);
const story = storiesModel();
const storyV1 = storiesModel({ system: "You tell stories about dragons." });
let storyDigest: string;

function text(html: string): string {
  return html.replace(/<[^>]+>/g, " ").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&").replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/\s+/g, " ");
}

function fact(html: string, name: string): string | undefined {
  return new RegExp(`data-fact="${name}"[^>]*>([^<]*)<`).exec(html)?.[1];
}

before(async () => {
  r = await startInProcess();
  const admin = directAdmin(r.registry);
  for (const [name, key] of Object.entries(keys)) await admin.addUser(name, [formatPublicKeyLine(key.publicKey)]);
  await admin.createOrg("team", "alice");
  await admin.addMember("team", "bob", "reader");
  const token = await r.token(keys.alice, ["story", "described", "noise", "tiny"].map((m) => `repository:alice/${m}:pull,push`).join(" ") + " repository:team/secret:pull,push");
  storyDigest = await pushModel(r, token, { repo: "alice/story", tag: "latest", model: story });
  await pushModel(r, token, { repo: "alice/story", tag: "v1", model: storyV1 });
  await pushModel(r, token, { repo: "team/secret", tag: "latest", model: story });
  await pushModel(r, token, { repo: "alice/described", tag: "latest", model: story });
  await pushModel(r, token, { repo: "alice/noise", tag: "latest", model: makeModel(30_000) });
  for (const p of ["alice/story", "alice/described", "alice/noise"]) await admin.setVisibility(p, "public");
  const alice = await findAccount(r.registry.db, "alice");
  await updateModelSettings(r.registry, { viewer: alice, ns: "team", model: "secret" }, { description: "Internal support bot for the helpdesk." });
  await updateModelSettings(r.registry, { viewer: alice, ns: "alice", model: "described" }, {
    description: [
      "A **tiny** storyteller, see [the paper](https://example.com/paper) and [this](javascript:alert(1)).",
      "",
      "<script>alert('x')</script>",
      "",
      '<img src=x onerror="alert(1)">',
      "",
      "![pixel](data:image/png;base64,AAAA) ![p2](  JaVa\tScRiPt:alert(2))",
    ].join("\n"),
  });
});
after(async () => r?.close());

describe("model page", () => {
  test("stories260K: architecture, parameters, quantization and context length from the GGUF header", async () => {
    const page = await anon().get("/alice/story");
    assert.equal(page.status, 200);
    assert.equal(fact(page.html, "architecture"), "llama");
    assert.equal(fact(page.html, "parameters"), "293K");
    assert.match(page.html, /data-fact="parameters" title="292,800"/, "the exact count is in the title");
    assert.equal(fact(page.html, "quantization"), "F32", "no general.file_type: the tensors' type");
    assert.equal(fact(page.html, "context-length"), "2,048");
    assert.equal(fact(page.html, "size"), "1.2 MB");
  });

  test("pull command, last push with the key's fingerprint, tags with digests, layers", async () => {
    const { html } = await anon().get("/alice/story");
    assert.match(html, /<code id="pull-command"[^>]*>corral pull registry\.test\/alice\/story:latest --insecure<\/code>/);
    assert.match(html, /data-copy="pull-command" hidden/, "the copy button waits for the script");
    const t = text(html);
    assert.match(t, /Last pushed .* ago by alice \(v1\)/);
    assert.equal(fact(html, "push-key"), fingerprint(keys.alice.publicKey));
    assert.match(html, new RegExp(`href="/alice/story/tags/v1"`));
    assert.match(html, new RegExp(`title="${storyDigest}"`), "the latest tag's manifest digest");
    assert.match(t, /template \{\{ \.System \}\} \{\{ \.Prompt \}\}/);
    assert.match(t, /system You tell very short stories\./, "the default tag is latest");
    assert.match(t, /params \{"num_predict":32,"stop":\["<\|end\|>"\],"temperature":0\}/);
    assert.match(t, /license MIT License Copyright \(c\) 2023 Andrej Karpathy/);
    assert.match(t, /arch llama · parameters 293K · quantization F32/);
  });

  test("the tag page shows the full Modelfile and every blob digest", async () => {
    const { status, html } = await anon().get("/alice/story/tags/v1");
    assert.equal(status, 200);
    const modelfile = /<pre class="block modelfile" id="modelfile">([^]*?)<\/pre>/.exec(html)?.[1]?.replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">");
    assert.ok(modelfile, "a Modelfile block");
    assert.match(modelfile, /^FROM registry\.test\/alice\/story:v1$/m);
    assert.match(modelfile, /^TEMPLATE "\{\{ \.System \}\}\n\{\{ \.Prompt \}\}"$/m);
    assert.match(modelfile, /^SYSTEM You tell stories about dragons\.$/m);
    assert.match(modelfile, /^PARAMETER num_predict 32$/m);
    assert.match(modelfile, /^PARAMETER stop <\|end\|>$/m);
    assert.match(modelfile, /^PARAMETER temperature 0$/m);
    assert.match(modelfile, /^LICENSE "MIT License\n\nCopyright \(c\) 2023 Andrej Karpathy"$/m);
    for (const d of [...storyV1.manifest.layers, storyV1.manifest.config]) assert.ok(html.includes(`<code>${d.digest}</code>`), d.mediaType);
    assert.equal((await anon().get("/alice/story/tags/nope")).status, 404);
  });

  test("every name a push accepts has its pages: a model named _draft", async () => {
    const token = await r.token(keys.alice, "repository:alice/_draft:pull,push");
    await pushModel(r, token, { repo: "alice/_draft", tag: "latest", model: story });
    await directAdmin(r.registry).setVisibility("alice/_draft", "public");
    const page = await anon().get("/alice/_draft");
    assert.equal(page.status, 200);
    assert.match(page.html, /corral pull registry\.test\/alice\/_draft:latest/);
    assert.equal((await anon().get("/alice/_draft/tags/latest")).status, 200);
  });

  test("a model layer that is not GGUF is said to be unreadable, and the page still works", async () => {
    const { status, html } = await anon().get("/alice/noise");
    assert.equal(status, 200);
    assert.equal(fact(html, "architecture"), "unreadable");
    assert.match(text(html), /not a readable GGUF file: \w+/);
  });

  test("facts are read once with ranged reads and then served from the database", async () => {
    const bytes = readFileSync(tinyLlamaPath);
    const digest = sha256Bytes(bytes);
    const model = makeModel(10);
    model.blobs.set(digest, bytes);
    model.manifest.layers[0] = { mediaType: MediaType.model, digest, size: bytes.length };
    const token = await r.token(keys.alice, "repository:alice/tiny:pull,push");
    await pushModel(r, token, { repo: "alice/tiny", tag: "latest", model });
    await directAdmin(r.registry).setVisibility("alice/tiny", "public");

    // The push already had the header read in the background; wait for it (however long that takes
    // on this machine), then forget it.
    while ((await r.registry.db.select().from(blobFacts).where(eq(blobFacts.digest, digest))).length === 0) {
      await new Promise((res) => setTimeout(res, 20));
    }
    // A storage failure is not a verdict on the blob: nothing is cached, the next view tries again.
    await r.registry.db.delete(blobFacts).where(eq(blobFacts.digest, digest));
    const broken: BlobStore = Object.create(r.registry.store, { read: { value: async () => Promise.reject(new Error("connection reset")) } });
    const failed = (await blobFactsFor(r.registry.db, broken, [{ digest, size: bytes.length, kind: "gguf" }])).get(digest);
    assert.equal(failed?.facts, null);
    assert.equal((await r.registry.db.select().from(blobFacts).where(eq(blobFacts.digest, digest))).length, 0);

    // What the catalog reads from the store for a header it has not seen.
    const ranges: ByteRange[] = [];
    const counting: BlobStore = Object.create(r.registry.store, {
      read: { value: (d: string, range?: ByteRange) => (range && ranges.push(range), r.registry.store.read(d, range)) },
    });
    await r.registry.db.delete(blobFacts).where(eq(blobFacts.digest, digest));
    const facts = (await blobFactsFor(r.registry.db, counting, [{ digest, size: bytes.length, kind: "gguf" }])).get(digest);
    assert.equal(facts?.kind, "gguf");
    assert.deepEqual(
      { arch: facts.facts?.architecture, quant: facts.facts?.quantization },
      { arch: "llama", quant: "F16" },
      "general.file_type 1 names the quantization",
    );
    assert.ok(ranges.length >= 1 && ranges.every((x) => x.end - x.start + 1 <= 256 * 1024), `ranged reads: ${JSON.stringify(ranges)}`);
    assert.ok(ranges.reduce((n, x) => n + x.end - x.start + 1, 0) < bytes.length, "less than the whole blob");

    // With the bytes gone from the store, the page still has the facts.
    await r.registry.store.delete(digest);
    const page = await anon().get("/alice/tiny");
    assert.equal(page.status, 200);
    assert.equal(fact(page.html, "architecture"), "llama");
    assert.equal(fact(page.html, "quantization"), "F16");
    const [row] = await r.registry.db.select().from(blobFacts).where(eq(blobFacts.digest, digest));
    assert.equal(row?.kind, "gguf");
  });
});

describe("search", () => {
  const names = (html: string): string[] => [...html.matchAll(/<h3><a href="\/([^"]+)">/g)].map((m) => m[1]!);

  test("finds a pushed model by a prefix of its name, and by namespace/model", async () => {
    assert.ok(names((await anon().get("/?q=stor")).html).includes("alice/story"));
    assert.deepEqual(names((await anon().get("/?q=alice%2Fstory")).html)[0], "alice/story", "the exact path ranks first");
  });

  test("matches words of descriptions", async () => {
    assert.deepEqual(names((await anon().get("/?q=storyteller")).html), ["alice/described"]);
    assert.deepEqual(names((await anon().get("/?q=Tiny+STORY")).html), ["alice/described"]);
  });

  test("private models are found only by members", async () => {
    assert.deepEqual(names((await anon().get("/?q=helpdesk")).html), []);
    const carol = new Browser(r);
    await carol.signIn(keys.carol);
    assert.deepEqual(names((await carol.get("/?q=helpdesk")).html), [], "a signed-in non-member");
    const bob = new Browser(r);
    await bob.signIn(keys.bob);
    assert.deepEqual(names((await bob.get("/?q=helpdesk")).html), ["team/secret"], "a reader of team");
  });

  test("odd input is text, not syntax", async () => {
    for (const q of ["%", "_", "'", "\\", "a & b | !c", "story:*", "<b>", "a".repeat(500)]) {
      const res = await anon().get(`/?q=${encodeURIComponent(q)}`);
      assert.equal(res.status, 200, q);
    }
    assert.equal(toTsQuery("Tiny  llama-2!"), "tiny:* & llama:* & 2:*");
    assert.equal(toTsQuery("&|!():*"), undefined);
  });
});

describe("visibility", () => {
  test("a private model is invisible anonymously: not listed, not searchable, its page is a 404 like a missing one", async () => {
    const home = await anon().get("/");
    assert.equal(home.status, 200);
    assert.ok(home.html.includes('href="/alice/story"'));
    assert.ok(!home.html.includes("team/secret"));
    const missing = await anon().get("/team/nothing");
    const secret = await anon().get("/team/secret");
    assert.equal(secret.status, 404);
    assert.equal(text(secret.html).replace("team/secret", "X"), text(missing.html).replace("team/nothing", "X"), "indistinguishable from a missing model");
    assert.equal((await anon().get("/team/secret/tags/latest")).status, 404);
    assert.ok(!(await anon().get("/team")).html.includes("secret"));
  });

  test("members see it, with its private badge; other accounts do not", async () => {
    const bob = new Browser(r);
    await bob.signIn(keys.bob);
    const page = await bob.get("/team/secret");
    assert.equal(page.status, 200);
    assert.match(page.html, /<span class="chip private">private<\/span>/);
    assert.equal(fact(page.html, "architecture"), "llama");
    assert.ok((await bob.get("/team")).html.includes('href="/team/secret"'));
    const carol = new Browser(r);
    await carol.signIn(keys.carol);
    assert.equal((await carol.get("/team/secret")).status, 404);
  });
});

describe("descriptions", () => {
  test("Markdown is rendered; raw HTML is shown as text; only safe links survive", async () => {
    const { html } = await anon().get("/alice/described");
    // The opening paragraph is the lead under the title, the rest the readme: both are the description.
    const readme = [/<div class="lead">([^]*?)<\/div>/, /<div class="readme">([^]*?)<\/div>/].map((re) => re.exec(html)?.[1] ?? "").join("\n");
    assert.match(readme, /<strong>tiny<\/strong>/);
    assert.match(readme, /<a href="https:\/\/example\.com\/paper" rel="nofollow noopener noreferrer">the paper<\/a>/);
    assert.ok(!/<script/i.test(readme), "no script element");
    assert.ok(readme.includes("&lt;script&gt;"), "the script tag is visible as text");
    assert.ok(!/<img[^>]*onerror/i.test(readme), "no live event handler attribute");
    assert.ok(!/href="\s*javascript/i.test(readme), "no javascript: link");
    assert.ok(!/src="[^"]*script:/i.test(readme), "no javascript: image");
    assert.ok(!/src="data:/i.test(readme), "data: URLs are not loaded");
    assert.match(text(html), /A tiny storyteller, see the paper and this\./, "the summary is plain text");
  });

  test("pages send a strict Content-Security-Policy and serve their own assets", async () => {
    const res = await r.request("/alice/story");
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    const html = await res.text();
    assert.ok(!/(src|href)="https?:\/\//.test(html.replace(/<div class="(?:lead|readme)">[^]*?<\/div>/g, "")), "nothing loaded from elsewhere");
    for (const m of html.matchAll(/(?:src|href)="(\/-\/static\/[^"]+)"/g)) {
      const asset = await r.request(m[1]!.replace(/&amp;/g, "&"));
      assert.equal(asset.status, 200, m[1]);
      assert.match(asset.headers.get("cache-control") ?? "", /immutable/);
    }
  });
});
