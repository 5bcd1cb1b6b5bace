// `corral fsck` on stores damaged on purpose: a manifest naming a missing blob, a blob whose
// bytes were flipped, a truncated blob, an unparsable manifest, temporary and partial files and
// unused blobs. The report names each; --repair leaves a store that checks clean and keeps the
// intact models usable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, open, readFile, rm, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModelName } from "@corral/shared/name";
import { MediaType, encodeManifest, encodeConfig, type Manifest } from "@corral/shared/manifest";
import { sha256Bytes } from "@corral/shared/digest";
import { fingerprint, formatPublicKeyLine, generateKeyPair, signModel } from "@corral/shared/signing";
import type { StoredSignature } from "../src/store/signatures.ts";
import { Store } from "../src/store/store.ts";
import { fsckStore } from "../src/store/fsck.ts";
import { runCLI } from "../../../test/helpers/daemon.ts";
import { listFiles } from "../../../test/helpers/files.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { createReadStream } from "node:fs";

async function model(store: Store, name: string, text: string): Promise<{ name: ModelName; manifest: Manifest }> {
  const gguf = await store.blobs.write(createReadStream(fixtures.stories260K));
  const tmpl = await store.blobs.writeBytes(text);
  const config = await store.blobs.writeBytes(
    encodeConfig({ model_format: "gguf", model_family: "llama", model_families: ["llama"], model_type: "260K", file_type: "F32", architecture: "amd64", os: "linux" }),
  );
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifestV2,
    config: { mediaType: MediaType.config, digest: config.digest, size: config.size },
    layers: [
      { mediaType: MediaType.model, digest: gguf.digest, size: gguf.size },
      { mediaType: MediaType.template, digest: tmpl.digest, size: tmpl.size },
    ],
  };
  const n = ModelName.parse(name);
  await store.putManifest(n, encodeManifest(manifest), manifest);
  return { name: n, manifest };
}

async function freshStore(): Promise<{ dir: string; store: Store }> {
  const dir = await mkdtemp(join(tmpdir(), "corral-fsck-"));
  const store = new Store(dir);
  await store.init();
  return { dir, store };
}

const kinds = (r: { problems: Array<{ kind: string }> }): string[] => r.problems.map((p) => p.kind).sort();
const env = (dir: string) => ({ ...process.env, CORRAL_MODELS: dir, CORRAL_HOST: "127.0.0.1:9" });

test("a healthy store checks clean, by hash and by size", async () => {
  const { dir, store } = await freshStore();
  await model(store, "story", "{{ .Prompt }}");
  const full = await fsckStore(dir);
  assert.deepEqual(full.problems, []);
  assert.equal(full.manifests, 1);
  assert.equal(full.blobs, 3);
  assert.ok(full.bytesVerified > 1_000_000, "every blob was hashed");
  const quick = await fsckStore(dir, { quick: true });
  assert.deepEqual(quick.problems, []);
  assert.equal(quick.bytesVerified, 0);
  const cli = await runCLI({ env: env(dir) }, ["fsck"]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /1 manifests, 3 blobs, \d+ bytes hashed: no problems found/);
  await rm(dir, { recursive: true, force: true });
});

test("damage of every kind is reported by name, and --repair leaves a clean store with the intact model", async () => {
  const { dir, store } = await freshStore();
  const good = await model(store, "good", "{{ .Prompt }}");
  const missing = await model(store, "missing", "missing: {{ .Prompt }}");
  const corrupt = await model(store, "corrupt", "corrupt: {{ .Prompt }}");
  const truncated = await model(store, "truncated", "truncated: {{ .Prompt }}");
  const missingDigest = missing.manifest.layers[1]!.digest;
  const corruptDigest = corrupt.manifest.layers[1]!.digest;
  const truncatedDigest = truncated.manifest.layers[1]!.digest;
  await rm(store.blobs.path(missingDigest));
  // Same size, different bytes: only the hash finds it.
  const fh = await open(store.blobs.path(corruptDigest), "r+");
  await fh.write(Buffer.from("X"), 0, 1, 0);
  await fh.close();
  await truncate(store.blobs.path(truncatedDigest), 3);
  // An unparsable manifest, a leftover temporary write, a partial download (with a part state a
  // kill left half replaced), an unused blob.
  const brokenPath = join(dir, "manifests", "registry.ollama.ai", "library", "broken", "latest");
  await writeFile(join(dir, "manifests", "registry.ollama.ai", "library", "good", ".tmp-0123456789abcdef"), "{");
  await mkdir(join(brokenPath, ".."), { recursive: true });
  await writeFile(brokenPath, "{not json");
  await writeFile(join(dir, "blobs", ".tmp-aaaaaaaaaaaaaaaaaaaaaaaa"), "half a blob");
  await writeFile(join(dir, "blobs", `sha256-${"e".repeat(64)}-partial`), "part");
  await writeFile(join(dir, "blobs", `sha256-${"e".repeat(64)}-partial-0`), '{"N":0,"Offset":0,"Size":4,"Completed":2}');
  await writeFile(join(dir, "blobs", `sha256-${"e".repeat(64)}-partial-0.tmp`), '{"N":0,"Offset":0,"Size":4,"Completed":3}');
  const unused = await store.blobs.writeBytes("nobody uses me");

  const report = await fsckStore(dir, { graceMs: 0 });
  assert.deepEqual(kinds(report), [
    "corrupt-blob",
    "corrupt-blob",
    "invalid-manifest",
    "missing-blob",
    "partial-download",
    "partial-download",
    "partial-download",
    "temp-file",
    "temp-file",
    "unreferenced-blob",
  ]);
  const detail = (kind: string) => report.problems.filter((p) => p.kind === kind).map((p) => p.detail).join("\n");
  assert.match(detail("missing-blob"), new RegExp(`missing:latest names blob ${missingDigest}, which is not in the store`));
  assert.match(detail("corrupt-blob"), new RegExp(`blob ${corruptDigest} holds bytes whose sha256 is sha256:`));
  assert.match(detail("corrupt-blob"), new RegExp(`blob ${truncatedDigest} has 3 bytes but a manifest says \\d+`));
  assert.match(detail("invalid-manifest"), /manifest of broken:latest cannot be read/);
  assert.match(detail("unreferenced-blob"), new RegExp(`blob ${unused.digest} \\(14 bytes\\) is named by no model`));
  assert.equal(report.remainingErrors, 4);

  // Without hashing, the flipped byte goes unnoticed; the truncation does not.
  const quick = await fsckStore(dir, { quick: true, graceMs: 0 });
  assert.deepEqual(quick.problems.filter((p) => p.kind === "corrupt-blob").map((p) => p.path), [`blobs/sha256-${truncatedDigest.slice(7)}`]);

  const before = await runCLI({ env: env(dir) }, ["fsck"]);
  assert.equal(before.code, 1, "problems make the exit status 1");
  assert.match(before.stdout, /missing-blob: manifests\/registry.ollama.ai\/library\/missing\/latest: missing:latest names blob/);
  assert.match(before.stdout, /4 manifests, 6 blobs, \d+ bytes hashed: 10 problem\(s\); run with --repair to fix them/);

  // The partial download is young: kept for resuming even by a repair.
  const repaired = await runCLI({ env: env(dir) }, ["fsck", "--repair"]);
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
  assert.match(repaired.stdout, /corrupt-blob: .*\[repaired: deleted the blob and the manifests naming it: corrupt:latest\]/);
  const files = await listFiles(dir);
  const g = good.manifest;
  assert.deepEqual(
    files,
    [
      ...[g.config.digest, ...g.layers.map((l) => l.digest)].map((d) => `blobs/sha256-${d.slice(7)}`),
      `blobs/sha256-${"e".repeat(64)}-partial`,
      `blobs/sha256-${"e".repeat(64)}-partial-0`,
      `blobs/sha256-${"e".repeat(64)}-partial-0.tmp`,
      "manifests/registry.ollama.ai/library/good/latest",
    ].sort(),
  );
  assert.ok(await store.find(good.name), "the intact model is still there");
  assert.equal((await readFile(store.blobs.path(g.layers[1]!.digest), "utf8")), "{{ .Prompt }}");

  // Once old, the partial download goes too; then the store checks clean.
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const f of files.filter((f) => f.includes("partial"))) await utimes(join(dir, f), old, old);
  const last = await fsckStore(dir, { repair: true });
  assert.deepEqual(kinds(last), ["partial-download", "partial-download", "partial-download"]);
  assert.equal(last.remaining, 0);
  assert.deepEqual((await fsckStore(dir)).problems, []);
  await rm(dir, { recursive: true, force: true });
});

test("a repair while a daemon may be writing spares recent leftovers", async () => {
  const { dir, store } = await freshStore();
  await model(store, "story", "{{ .Prompt }}");
  await writeFile(join(dir, "blobs", ".tmp-bbbbbbbbbbbbbbbbbbbbbbbb"), "in flight");
  const fresh = await store.blobs.writeBytes("uploaded for a create that has not written its manifest yet");
  const r = await fsckStore(dir, { repair: true });
  assert.deepEqual(kinds(r), ["temp-file", "unreferenced-blob"]);
  assert.ok(r.problems.every((p) => p.repaired === undefined && /recent/.test(p.detail)));
  assert.equal(r.remainingErrors, 0);
  assert.ok(await store.blobs.has(fresh.digest));
  const json = await runCLI({ env: env(dir) }, ["fsck", "--json"]);
  assert.equal(json.code, 0);
  assert.equal((JSON.parse(json.stdout) as { remaining: number }).remaining, 2);
  await rm(dir, { recursive: true, force: true });
});

test("kept publisher signatures: ones that do not verify, or belong to no model, are reported and repaired", async () => {
  const { dir, store } = await freshStore();
  const story = await model(store, "story", "{{ .Prompt }}");
  const tale = await model(store, "tale", "Once: {{ .Prompt }}");
  const digestOf = async (n: ModelName): Promise<string> => sha256Bytes(await readFile(join(dir, "manifests", n.host, n.namespace, n.model, n.tag)));
  const alice = generateKeyPair("alice");
  const mallory = generateKeyPair("mallory");
  const record = (key: typeof alice, account: string, digest: string, signedOver = digest): StoredSignature => ({
    host: "team.example",
    repository: "team/story",
    digest,
    account,
    key: formatPublicKeyLine(key.publicKey),
    fingerprint: fingerprint(key.publicKey),
    signature: signModel(key, { host: "team.example", repository: "team/story", digest: signedOver }),
    signed_at: "2026-12-01T00:00:00Z",
    verified_at: "2026-12-01T00:00:01Z",
  });
  const storyDigest = await digestOf(story.name);
  const taleDigest = await digestOf(tale.name);
  const elsewhere = sha256Bytes("a manifest no model here has");
  // story: one good record and one made over other bytes; tale: a file that is no list; one orphan; one stray.
  await store.signatures.write(storyDigest, [record(alice, "alice", storyDigest), record(mallory, "alice", storyDigest, elsewhere)]);
  await mkdir(store.signatures.dir, { recursive: true });
  await writeFile(store.signatures.path(taleDigest), "{ not a list");
  await store.signatures.write(elsewhere, [record(alice, "alice", elsewhere)]);
  await writeFile(join(store.signatures.dir, "notes.txt"), "stray");
  const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
  for (const d of [elsewhere]) await utimes(store.signatures.path(d), old, old);
  await utimes(join(store.signatures.dir, "notes.txt"), old, old);

  const r = await fsckStore(dir);
  assert.deepEqual(kinds(r), ["bad-signature", "bad-signature", "unreferenced-signature", "unreferenced-signature"]);
  assert.equal(r.remainingErrors, 0, "the models themselves are fine");
  const bad = r.problems.filter((p) => p.kind === "bad-signature").map((p) => p.detail).sort();
  assert.match(bad[0]!, /kept for story:latest: 1 of 2 do not verify/);
  assert.match(bad[1]!, /kept for tale:latest: cannot be read/);

  const fixed = await fsckStore(dir, { repair: true });
  assert.equal(fixed.remaining, 0, JSON.stringify(fixed.problems));
  const kept = await store.signatures.read(storyDigest);
  assert.deepEqual(kept.map((k) => k.fingerprint), [fingerprint(alice.publicKey)], "the record that verifies stays");
  assert.deepEqual(await store.signatures.entries(), { digests: [storyDigest], strays: [] });
  assert.deepEqual((await fsckStore(dir)).problems, []);
  await rm(dir, { recursive: true, force: true });
});

test("fsck of a directory that does not exist says so", async () => {
  const r = await runCLI({ env: env("/nonexistent/corral-models") }, ["fsck"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Error: models directory \/nonexistent\/corral-models does not exist/);
});
