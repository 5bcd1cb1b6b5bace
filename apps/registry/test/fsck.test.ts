// `corral-registry fsck` on a registry damaged on purpose: a blob deleted from the store behind
// the database's back, a blob with a flipped byte, bytes the database does not know, an upload
// area without a session, a row nothing references, publisher signatures changed in the database or
// left by a withdrawn key. The report names each; --repair removes the manifests that can no longer
// be pulled and leaves the intact ones, and the models can be pushed again.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, open, rm, utimes, writeFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { fingerprint, formatPublicKeyLine, generateKeyPair, signModel } from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { directAdmin } from "../src/services/admin.ts";
import { fsckRegistry } from "../src/services/fsck.ts";
import { accounts, blobs, manifests, modelSignatures, repositories } from "../src/db/schema.ts";
import { and, eq } from "drizzle-orm";
import type { FilesystemBlobStore } from "../src/storage/filesystem.ts";
import { bearer, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { makeModel, type TestModel } from "./support/fixtures.ts";
import { startRegistry, registryCLI } from "../../../test/helpers/registry.ts";

const key = generateKeyPair();
let r: InProcess;
let token: string;
const models: Record<"a" | "b" | "c", TestModel> = { a: makeModel(50_000), b: makeModel(50_000), c: makeModel(50_000) };

before(async () => {
  r = await startInProcess();
  await directAdmin(r.registry).addUser("alice", [formatPublicKeyLine(key.publicKey)]);
  token = await r.token(key, "repository:alice/a:pull,push repository:alice/b:pull,push repository:alice/c:pull,push");
  for (const n of ["a", "b", "c"] as const) await pushModel(r, token, { repo: `alice/${n}`, tag: "latest", model: models[n] });
});
after(async () => r?.close());

const kinds = (rep: { problems: Array<{ kind: string }> }): string[] => rep.problems.map((p) => p.kind).sort();
const old = new Date(Date.now() - 3 * 3600_000);

test("a consistent registry checks clean, by hash and by size", async () => {
  const full = await fsckRegistry(r.registry, { graceSeconds: 3600 });
  assert.deepEqual(full.problems, []);
  assert.ok(full.bytesVerified >= 150_000);
  assert.equal(full.manifests, 3);
  const quick = await fsckRegistry(r.registry, { graceSeconds: 3600, quick: true });
  assert.deepEqual(quick.problems, []);
  assert.equal(quick.bytesVerified, 0);
});

test("publisher signatures that do not verify, or whose key was withdrawn, are reported and repaired", async () => {
  const db = r.registry.db;
  const [repo] = await db
    .select({ id: repositories.id })
    .from(repositories)
    .innerJoin(accounts, eq(accounts.id, repositories.namespaceId))
    .where(and(eq(accounts.name, "alice"), eq(repositories.name, "c")));
  const [alice] = await db.select({ id: accounts.id }).from(accounts).where(eq(accounts.name, "alice"));
  const [manifest] = await db.select({ digest: manifests.digest }).from(manifests).where(eq(manifests.repositoryId, repo!.id));
  const digest = manifest!.digest;
  const host = "registry.example";
  const row = (k: typeof key, signedOver: string) => ({
    repositoryId: repo!.id,
    manifestDigest: digest,
    key: formatPublicKeyLine(k.publicKey).split(" ")[1]!,
    fingerprint: fingerprint(k.publicKey),
    accountId: alice!.id,
    host,
    signature: signModel(k, { host, repository: "alice/c", digest: signedOver }),
  });
  // Alice's registered key over the right digest; a second registered key over other bytes; a key never registered.
  const second = generateKeyPair();
  const gone = generateKeyPair();
  await directAdmin(r.registry).addKey("alice", formatPublicKeyLine(second.publicKey));
  await db.insert(modelSignatures).values([row(key, digest), row(second, sha256Bytes("other bytes")), row(gone, digest)]);

  const rep = await fsckRegistry(r.registry, { graceSeconds: 3600, quick: true });
  assert.deepEqual(kinds(rep), ["bad-signature", "withdrawn-signature"]);
  assert.equal(rep.remainingErrors, 0, "the model can still be pulled");
  assert.match(rep.problems.find((p) => p.kind === "bad-signature")!.detail, new RegExp(`alice/c@${digest} by key ${fingerprint(second.publicKey).replace(/[+/]/g, "\\$&")} does not verify`));
  const fixed = await fsckRegistry(r.registry, { graceSeconds: 3600, quick: true, repair: true });
  assert.equal(fixed.remaining, 0);
  const left = await db.select({ fingerprint: modelSignatures.fingerprint }).from(modelSignatures).where(eq(modelSignatures.repositoryId, repo!.id));
  assert.deepEqual(left.map((l) => l.fingerprint), [fingerprint(key.publicKey)], "the signature that verifies stays");
  assert.deepEqual((await fsckRegistry(r.registry, { graceSeconds: 3600, quick: true })).problems, []);
});

test("damage is reported by name and --repair removes what can no longer be pulled", async () => {
  const store = r.registry.store as FilesystemBlobStore;
  const lost = models.a.manifest.layers[0]!.digest;
  const flipped = models.b.manifest.layers[1]!.digest;
  await rm(store.blobPath(lost));
  const fh = await open(store.blobPath(flipped), "r+");
  await fh.write(Buffer.from("#"), 0, 1, 0);
  await fh.close();
  // Bytes no row knows (a crash between commit and insert), an orphaned upload area, a lone row.
  const unknownBytes = Buffer.from("committed, never recorded");
  const unknown = sha256Bytes(unknownBytes);
  await mkdir(join(store.blobPath(unknown), ".."), { recursive: true });
  await writeFile(store.blobPath(unknown), unknownBytes);
  await utimes(store.blobPath(unknown), old, old);
  const upload = randomUUID();
  const uploadPath = join(store.root, "uploads", upload);
  await writeFile(uploadPath, "half");
  await utimes(uploadPath, old, old);
  const loneBytes = Buffer.from("recorded, never linked");
  const lone = sha256Bytes(loneBytes);
  await mkdir(join(store.blobPath(lone), ".."), { recursive: true });
  await writeFile(store.blobPath(lone), loneBytes);
  await r.registry.db.insert(blobs).values({ digest: lone, size: loneBytes.length });

  const report = await fsckRegistry(r.registry, { graceSeconds: 3600 });
  assert.deepEqual(kinds(report), ["broken-manifest", "broken-manifest", "corrupt-blob", "missing-blob", "stray-upload", "unknown-blob", "unreferenced-blob"]);
  const text = report.problems.map((p) => p.detail).join("\n");
  assert.match(text, new RegExp(`the database lists blob ${lost} \\(50000 bytes\\) but the filesystem store does not have it`));
  assert.match(text, new RegExp(`blob ${flipped} holds bytes whose sha256 is sha256:[0-9a-f]{64}`));
  assert.match(text, new RegExp(`manifest alice/a@sha256:[0-9a-f]{64} \\(tags: latest\\) names blob\\(s\\) that are missing or damaged: ${lost}`));
  assert.match(text, new RegExp(`manifest alice/b@sha256:[0-9a-f]{64} \\(tags: latest\\) names blob\\(s\\) that are missing or damaged: ${flipped}`));
  assert.match(text, new RegExp(`the store holds ${unknown} \\(25 bytes\\) but the database does not know it`));
  assert.match(text, new RegExp(`upload area ${upload} has no upload session`));
  assert.equal(report.remainingErrors, 4);

  // Size-only checking misses the flipped byte but not the missing blob.
  const quick = await fsckRegistry(r.registry, { graceSeconds: 3600, quick: true });
  assert.ok(!kinds(quick).includes("corrupt-blob"));
  assert.ok(kinds(quick).includes("missing-blob"));

  const repaired = await fsckRegistry(r.registry, { graceSeconds: 3600, repair: true });
  assert.equal(repaired.remainingErrors, 0);
  assert.deepEqual(repaired.problems.filter((p) => !p.repaired).map((p) => p.kind), ["unreferenced-blob"], "only what gc removes is left");
  for (const [n, status] of [["a", 404], ["b", 404], ["c", 200]] as const) {
    const res = await r.request(`/v2/alice/${n}/manifests/latest`, { headers: bearer(token) });
    assert.equal(res.status, status, `alice/${n}`);
  }
  const head = await r.request(`/v2/alice/b/blobs/${flipped}`, { method: "HEAD", headers: bearer(token) });
  assert.equal(head.status, 404, "the damaged blob is no longer offered");

  // The client can push the models again and they are whole.
  await pushModel(r, token, { repo: "alice/a", tag: "latest", model: models.a });
  await pushModel(r, token, { repo: "alice/b", tag: "latest", model: models.b });
  const after = await fsckRegistry(r.registry, { graceSeconds: 3600 });
  assert.deepEqual(kinds(after), ["unreferenced-blob"]);
  const blob = await r.request(`/v2/alice/b/blobs/${flipped}`, { headers: bearer(token) });
  assert.equal(sha256Bytes(Buffer.from(await blob.arrayBuffer())), flipped);
});

test("the CLI asks a running server that holds the embedded database, and repairs through it", async () => {
  const reg = await startRegistry();
  try {
    const dataDir = reg.env["REGISTRY_DATA"]!;
    const clean = await registryCLI(reg, ["fsck"]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, /0 manifests, 0 blobs: no problems found/);
    const bytes = Buffer.from("a file nobody recorded");
    const digest = sha256Bytes(bytes);
    const path = join(dataDir, "storage", "blobs", "sha256", digest.slice(7, 9), digest.slice(7));
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, bytes);
    await utimes(path, old, old);
    const found = await registryCLI(reg, ["fsck", "--quick"]);
    assert.equal(found.code, 0, "leftovers are not errors");
    assert.match(found.stdout, new RegExp(`unknown-blob: the store holds ${digest} \\(22 bytes\\)`));
    assert.match(found.stdout, /1 problem\(s\); run with --repair to fix them/);
    const fixed = await registryCLI(reg, ["fsck", "--repair", "--json"]);
    assert.equal(fixed.code, 0, fixed.stderr);
    const rep = JSON.parse(fixed.stdout) as { problems: Array<{ repaired?: string }>; remaining: number };
    assert.equal(rep.problems[0]?.repaired, "deleted from the store");
    assert.equal(rep.remaining, 0);
    assert.match((await registryCLI(reg, ["fsck"])).stdout, /no problems found/);
  } finally {
    await reg.stop();
  }
});
