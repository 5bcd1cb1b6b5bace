// Hostile manifests and layers in process: a manifest nested millions of levels deep or listing
// more layers than any model has is refused by the PUT before JSON.parse builds it; a manifest
// repeating one big licence layer hundreds of times, or naming many distinct big text layers,
// gets catalog pages whose size follows the distinct text shown, not the manifest's repetitions;
// params and messages layers that nest deep cannot break or stall the tag page.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sha256Bytes } from "@corral/shared/digest";
import { MAX_MANIFEST_BYTES, MAX_MANIFEST_LAYERS, MediaType, type Descriptor } from "@corral/shared/manifest";
import { formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { directAdmin } from "../src/services/admin.ts";
import { bearer, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import type { TestModel } from "./support/fixtures.ts";
import { Browser, storiesModel } from "./support/web-client.ts";

const alice = generateKeyPair();
let r: InProcess;
let token: string;
const anon = () => new Browser(r);

const models = ["deep", "annotated", "many", "licensed", "repeated", "distinct", "tiny", "jsonbomb"];

/** A model's blob as a layer descriptor, added to its blobs. */
function addLayer(model: TestModel, mediaType: string, bytes: Buffer): Descriptor {
  const digest = sha256Bytes(bytes);
  model.blobs.set(digest, bytes);
  return { mediaType, digest, size: bytes.length };
}

/** `count` lines of licence text, about `bytes` long, starting with `marker`. */
function licenceText(marker: string, bytes: number): Buffer {
  const line = "Permission is hereby granted, free of charge, to any person obtaining a copy of this software.\n";
  return Buffer.from(`${marker}\n${line.repeat(Math.ceil(bytes / line.length))}`.slice(0, bytes));
}

function occurrences(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

async function putManifest(repo: string, body: string | Buffer): Promise<Response> {
  return r.request(`/v2/${repo}/manifests/latest`, { method: "PUT", headers: bearer(token, { "Content-Type": MediaType.manifestV2 }), body });
}

async function errorCode(res: Response): Promise<{ status: number; code: string | undefined; message: string | undefined }> {
  const text = await res.text();
  let body: { errors?: Array<{ code: string; message: string }> } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // An accepted manifest has no body.
  }
  return { status: res.status, code: body.errors?.[0]?.code, message: body.errors?.[0]?.message };
}

/**
 * Runs `fn` while counting the calls of JSON.parse that are handed at least `min` characters
 * (only those made from a function named `caller`, when given).
 */
async function countingBigParses<T>(min: number, fn: () => Promise<T>, caller?: string): Promise<{ result: T; bigParses: number }> {
  const realParse = JSON.parse;
  let bigParses = 0;
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    if (String(text).length >= min && (!caller || new Error().stack?.includes(caller))) bigParses++;
    return realParse(text, reviver);
  }) as typeof JSON.parse;
  try {
    return { result: await fn(), bigParses };
  } finally {
    JSON.parse = realParse;
  }
}

before(async () => {
  // New repositories are public, so the pages are the anonymous visitor's.
  r = await startInProcess({ REGISTRY_DEFAULT_VISIBILITY: "public" });
  const admin = directAdmin(r.registry);
  await admin.addUser("alice", [formatPublicKeyLine(alice.publicKey)]);
  token = await r.token(alice, models.map((m) => `repository:alice/${m}:pull,push`).join(" "));
  // Repositories that exist before their hostile manifest arrives.
  await pushModel(r, token, { repo: "alice/annotated", tag: "base", model: storiesModel() });
  await pushModel(r, token, { repo: "alice/many", tag: "base", model: storiesModel() });
});
after(async () => r?.close());

describe("manifest PUT bounds", () => {
  test("a 4 MiB manifest nested two million levels deep is refused with MANIFEST_INVALID, before JSON.parse sees it", async () => {
    const n = 2_000_000;
    const deep = `{"schemaVersion":2,"x":${"[".repeat(n)}${"]".repeat(n)}}`;
    assert.ok(Buffer.byteLength(deep) <= MAX_MANIFEST_BYTES, "within the size limit: only its shape is wrong");
    const { result, bigParses } = await countingBigParses(1_000_000, async () => errorCode(await putManifest("alice/deep", deep)));
    assert.equal(result.status, 400);
    assert.equal(result.code, "MANIFEST_INVALID");
    assert.match(result.message ?? "", /nested more than 32 levels deep/);
    assert.equal(bigParses, 0, "the nesting scan refused it before any JSON.parse of the body");
    assert.equal((await r.request("/v2/alice/deep/tags/list", { headers: bearer(token) })).status, 404, "no repository was left behind");
  });

  test("a valid manifest with a deeply nested annotation is refused too", async () => {
    const m = storiesModel().manifest;
    const n = 1_000_000;
    const body = JSON.stringify(m).replace(/}$/, `,"annotations":{"x":${"[".repeat(n)}${"]".repeat(n)}}}`);
    const res = await errorCode(await putManifest("alice/annotated", body));
    assert.deepEqual([res.status, res.code], [400, "MANIFEST_INVALID"]);
    const tags = (await (await r.request("/v2/alice/annotated/tags/list", { headers: bearer(token) })).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ["base"], "the tag was not written");
  });

  test(`a manifest naming more than ${MAX_MANIFEST_LAYERS} layers is refused; exactly ${MAX_MANIFEST_LAYERS} is accepted`, async () => {
    const m = storiesModel().manifest;
    const template = m.layers.find((l) => l.mediaType === MediaType.template)!;
    const over = { ...m, layers: Array.from({ length: MAX_MANIFEST_LAYERS + 1 }, () => template) };
    const res = await errorCode(await putManifest("alice/many", JSON.stringify(over)));
    assert.deepEqual([res.status, res.code], [400, "MANIFEST_INVALID"]);
    assert.match(res.message ?? "", new RegExp(`at most ${MAX_MANIFEST_LAYERS}`));
    const atLimit = { ...m, layers: [m.layers[0]!, ...Array.from({ length: MAX_MANIFEST_LAYERS - 1 }, () => template)] };
    assert.equal((await putManifest("alice/many", JSON.stringify(atLimit))).status, 201);
    // Its pages list the one template once.
    for (const path of ["/alice/many", "/alice/many/tags/latest"]) {
      const page = await anon().get(path);
      assert.equal(page.status, 200, path);
      assert.ok(page.html.length < 64 * 1024, `${path}: ${page.html.length} bytes`);
      assert.equal(occurrences(page.html, "<th scope=\"row\">template</th>"), 1, path);
    }

    // Twenty more tags naming the same big manifest: the model page still reads and parses it once.
    const body = Buffer.from(JSON.stringify(atLimit));
    for (let i = 0; i < 20; i++) {
      const res = await r.request(`/v2/alice/many/manifests/t${i}`, { method: "PUT", headers: bearer(token, { "Content-Type": MediaType.manifestV2 }), body });
      assert.equal(res.status, 201);
    }
    const { result: page, bigParses } = await countingBigParses(body.length, () => anon().get("/alice/many"), "modelView");
    assert.equal(page.status, 200);
    assert.equal(occurrences(page.html, 'href="/alice/many/tags/t'), 20, "every tag is listed");
    assert.equal(bigParses, 1, "one parse of the manifest the 21 tags share");
  });
});

describe("catalog pages follow the distinct content", () => {
  const licence = licenceText("LICENCE-MARKER-7f3a", 256 * 1024);

  test("a 256 KiB licence layer repeated 200 times: small pages, the licence once, a note and a link to the whole blob", async () => {
    const model = storiesModel();
    const layer = addLayer(model, MediaType.license, licence);
    model.manifest.layers = [...model.manifest.layers.filter((l) => l.mediaType !== MediaType.license), ...Array.from({ length: 200 }, () => layer)];
    assert.ok(JSON.stringify(model.manifest).length < 40_000, "a small manifest");
    await pushModel(r, token, { repo: "alice/repeated", tag: "latest", model });

    const page = await anon().get("/alice/repeated");
    assert.equal(page.status, 200);
    // One licence shown once is at most 256 KiB of text; 200 copies were 50 MiB.
    assert.ok(page.html.length < 160 * 1024, `model page: ${page.html.length} bytes`);
    assert.equal(occurrences(page.html, "LICENCE-MARKER-7f3a"), 1, "the licence is shown once");
    assert.equal(occurrences(page.html, '<th scope="row">license</th>'), 1, "one licence row");
    assert.ok(page.html.includes(`href="/v2/alice/repeated/blobs/${layer.digest}"`), "a link to the whole licence");
    assert.match(page.html, /Showing the first 65 KB of 262 KB\. <a href="\/v2\/alice\/repeated\/blobs\/sha256:[0-9a-f]{64}">Download the whole layer\.<\/a>/);

    const tag = await anon().get("/alice/repeated/tags/latest");
    assert.equal(tag.status, 200);
    assert.ok(tag.html.length < 160 * 1024, `tag page: ${tag.html.length} bytes`);
    assert.equal(occurrences(tag.html, "LICENCE-MARKER-7f3a"), 1, "shown once; the Modelfile names the cut licence instead of repeating it");
    assert.equal(occurrences(tag.html, `<code>${layer.digest}</code>`), 1, "the blob list names the licence once");
    assert.match(tag.html, /×200/, "and says how often the manifest repeats it");
    const modelfile = /<pre class="block modelfile" id="modelfile">([^]*?)<\/pre>/.exec(tag.html)?.[1] ?? "";
    assert.match(modelfile, new RegExp(`^# LICENSE ${layer.digest} \\(262 KB\\) is too long to show here`, "m"));
    assert.doesNotMatch(modelfile, /^LICENSE /m);

    // The link serves the whole licence to anyone who may pull the model.
    const blob = await r.request(`/v2/alice/repeated/blobs/${layer.digest}`);
    assert.equal(blob.status, 200);
    assert.equal(Buffer.from(await blob.arrayBuffer()).length, licence.length);
  });

  test("a short licence repeated 200 times appears once in the layers and once in the Modelfile", async () => {
    const model = storiesModel();
    const layer = addLayer(model, MediaType.license, Buffer.from("SHORT-LICENCE-91c2: do as you like."));
    model.manifest.layers = [...model.manifest.layers.filter((l) => l.mediaType !== MediaType.license), ...Array.from({ length: 200 }, () => layer)];
    await pushModel(r, token, { repo: "alice/licensed", tag: "latest", model });
    const tag = await anon().get("/alice/licensed/tags/latest");
    assert.equal(tag.status, 200);
    const modelfile = /<pre class="block modelfile" id="modelfile">([^]*?)<\/pre>/.exec(tag.html)?.[1] ?? "";
    assert.equal(occurrences(modelfile, "LICENSE "), 1, modelfile);
    assert.equal(occurrences(tag.html, "SHORT-LICENCE-91c2"), 2, "once in the layers, once in the Modelfile");
    assert.equal(occurrences((await anon().get("/alice/licensed")).html, "SHORT-LICENCE-91c2"), 1);
  });

  test("many distinct big text layers: the page shows text up to its budget and lists the rest", async () => {
    const model = storiesModel();
    const layers = Array.from({ length: 24 }, (_, i) => addLayer(model, MediaType.license, licenceText(`DISTINCT-${String(i).padStart(2, "0")}-MARK`, 100 * 1024)));
    model.manifest.layers = [...model.manifest.layers.filter((l) => l.mediaType !== MediaType.license), ...layers];
    await pushModel(r, token, { repo: "alice/distinct", tag: "latest", model });
    const page = await anon().get("/alice/distinct");
    assert.equal(page.status, 200);
    // 2.4 MB of distinct licences: the page shows at most 256 KiB of them.
    assert.ok(page.html.length < 384 * 1024, `model page: ${page.html.length} bytes`);
    assert.equal(occurrences(page.html, "DISTINCT-00-MARK"), 1, "the first is shown");
    assert.equal(occurrences(page.html, "DISTINCT-23-MARK"), 0, "the last is not");
    assert.match(page.html, /not shown here: this page already shows/);
    const tag = await anon().get("/alice/distinct/tags/latest");
    assert.equal(tag.status, 200);
    assert.ok(tag.html.length < 512 * 1024, `tag page: ${tag.html.length} bytes`);
    for (const l of layers) assert.ok(tag.html.includes(`<code>${l.digest}</code>`), "every layer is listed by digest");
    const modelfile = /<pre class="block modelfile" id="modelfile">([^]*?)<\/pre>/.exec(tag.html)?.[1] ?? "";
    assert.equal(occurrences(modelfile, "is too long to show here"), 8, "the first few left out are named");
    assert.match(modelfile, /^# 16 more layers \(1\.6 MB\) are left out too; the blobs above list them$/m);
  });

  test("many distinct short text layers: at most 32 are shown inline, the rest in one row", async () => {
    const model = storiesModel();
    const layers = Array.from({ length: 100 }, (_, i) => addLayer(model, MediaType.license, Buffer.from(`TINY-${String(i).padStart(3, "0")}-MARK`)));
    model.manifest.layers = [...model.manifest.layers.filter((l) => l.mediaType !== MediaType.license), ...layers];
    await pushModel(r, token, { repo: "alice/tiny", tag: "latest", model });
    const page = await anon().get("/alice/tiny");
    assert.equal(page.status, 200);
    // params, template and system take 3 of the 32.
    assert.equal(occurrences(page.html, "-MARK"), 29);
    assert.match(page.html, /71 more licences \(923 B\) not shown here/);
  });

  test("params and messages layers nested deep do not break the tag page, and are never handed to JSON.parse", async () => {
    const model = storiesModel();
    const n = 100_000;
    const deepParams = Buffer.from(`{"stop":${"[".repeat(n)}${"]".repeat(n)}}`);
    const deepMessages = Buffer.from(`[{"role":"user","content":"hi","x":${"[".repeat(n)}${"]".repeat(n)}}]`);
    model.manifest.layers = [
      ...model.manifest.layers.filter((l) => l.mediaType !== MediaType.params),
      addLayer(model, MediaType.params, deepParams),
      addLayer(model, MediaType.messages, deepMessages),
    ];
    await pushModel(r, token, { repo: "alice/jsonbomb", tag: "latest", model });
    const { result: tag, bigParses } = await countingBigParses(100_000, () => anon().get("/alice/jsonbomb/tags/latest"));
    assert.equal(tag.status, 200);
    assert.equal(bigParses, 0, "the deep layers were refused by the nesting scan");
    const modelfile = /<pre class="block modelfile" id="modelfile">([^]*?)<\/pre>/.exec(tag.html)?.[1] ?? "";
    assert.match(modelfile, /^FROM /m, "the Modelfile is still there");
    assert.doesNotMatch(modelfile, /^PARAMETER /m);
    assert.doesNotMatch(modelfile, /^MESSAGE /m);
  });
});
