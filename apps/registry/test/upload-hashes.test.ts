// The running sha256 of an upload session is kept in memory across its chunks: the
// final PUT takes the digest from it without reading the upload back; a session whose hash this
// process no longer has (a restart, another replica) is read back and checked against its bytes.
// The same when the thread that keeps running hashes ended mid-session (services/upload-hash.ts).
// The upload's file is damaged between the last chunk and the PUT to tell the two apart.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { directAdmin } from "../src/services/admin.ts";
import { FilesystemBlobStore } from "../src/storage/filesystem.ts";
import { stopHashThread } from "../src/services/upload-hash.ts";
import { bearer, startInProcess, type InProcess } from "./support/in-process.ts";

const key = generateKeyPair();
let r: InProcess;
let token: string;

before(async () => {
  r = await startInProcess();
  await directAdmin(r.registry).addUser("alice", [formatPublicKeyLine(key.publicKey)]);
  token = await r.token(key, "repository:alice/m:pull,push");
});

after(async () => {
  await r?.close();
});

/** Opens a session and sends `data` in chunks of the given sizes; returns its id and URL path. */
async function upload(data: Buffer, chunks: number[]): Promise<{ id: string; path: string }> {
  const res = await r.request("/v2/alice/m/blobs/uploads/", { method: "POST", headers: bearer(token) });
  assert.equal(res.status, 202, await res.text());
  const id = res.headers.get("docker-upload-uuid")!;
  const path = new URL(res.headers.get("location")!).pathname;
  let at = 0;
  for (const n of chunks) {
    const body = data.subarray(at, at + n);
    const patched = await r.request(path, { method: "PATCH", headers: bearer(token, { "Content-Range": `${at}-${at + n - 1}` }), body });
    assert.equal(patched.status, 202, await patched.text());
    at += n;
  }
  assert.equal(at, data.length);
  return { id, path };
}

/** Overwrites the session's stored bytes with zeros of the same length. */
async function damage(id: string, size: number): Promise<void> {
  const store = r.registry.store;
  assert.ok(store instanceof FilesystemBlobStore);
  await writeFile(join(store.root, "uploads", id), Buffer.alloc(size));
}

// Sizes that cross the driver's 1 MiB buffers, and a second chunk that starts off a page.
const chunks = [3 * (1 << 20) + 5, 2 * (1 << 20) + 4093, 777];

test("the final PUT takes the digest from the running hash, kept across chunks", async () => {
  const data = randomBytes(chunks.reduce((a, b) => a + b));
  const s = await upload(data, chunks);
  await damage(s.id, data.length);
  const put = await r.request(`${s.path}?digest=${sha256Bytes(data)}`, { method: "PUT", headers: bearer(token) });
  assert.equal(put.status, 201, `the digest was not the running hash's: ${await put.text()}`);
});

test("a session whose running hash is gone is read back and checked", async () => {
  const data = randomBytes(chunks.reduce((a, b) => a + b));
  const s = await upload(data, chunks);
  r.registry.hashes.drop(s.id);
  await damage(s.id, data.length);
  const put = await r.request(`${s.path}?digest=${sha256Bytes(data)}`, { method: "PUT", headers: bearer(token) });
  assert.equal(put.status, 400);
  assert.match(await put.text(), /DIGEST_INVALID/);

  const again = randomBytes(10_000);
  const ok = await upload(again, [6000, 4000]);
  r.registry.hashes.drop(ok.id);
  const put2 = await r.request(`${ok.path}?digest=${sha256Bytes(again)}`, { method: "PUT", headers: bearer(token) });
  assert.equal(put2.status, 201, await put2.text());
});

test("a session whose hash thread ended is read back and checked", async () => {
  const data = randomBytes(chunks.reduce((a, b) => a + b));
  const s = await upload(data, chunks);
  await stopHashThread();
  await damage(s.id, data.length);
  const put = await r.request(`${s.path}?digest=${sha256Bytes(data)}`, { method: "PUT", headers: bearer(token) });
  assert.equal(put.status, 400);
  assert.match(await put.text(), /DIGEST_INVALID/);

  // Ended between two chunks: the second goes on without a running hash, and the PUT reads back.
  const again = randomBytes(3 * (1 << 20));
  const half = again.length / 2;
  const res = await r.request("/v2/alice/m/blobs/uploads/", { method: "POST", headers: bearer(token) });
  const path = new URL(res.headers.get("location")!).pathname;
  const first = await r.request(path, { method: "PATCH", headers: bearer(token, { "Content-Range": `0-${half - 1}` }), body: again.subarray(0, half) });
  assert.equal(first.status, 202, await first.text());
  await stopHashThread();
  const second = await r.request(path, { method: "PATCH", headers: bearer(token, { "Content-Range": `${half}-${again.length - 1}` }), body: again.subarray(half) });
  assert.equal(second.status, 202, await second.text());
  const put2 = await r.request(`${path}?digest=${sha256Bytes(again)}`, { method: "PUT", headers: bearer(token) });
  assert.equal(put2.status, 201, await put2.text());

  // A new session hashes on a new thread again.
  const later = randomBytes(2 << 20);
  const s3 = await upload(later, [1 << 20, 1 << 20]);
  await damage(s3.id, later.length);
  const put3 = await r.request(`${s3.path}?digest=${sha256Bytes(later)}`, { method: "PUT", headers: bearer(token) });
  assert.equal(put3.status, 201, `the digest was not the running hash's: ${await put3.text()}`);
});

test("a wrong digest is refused whichever way it was computed", async () => {
  const data = randomBytes(100_000);
  const s = await upload(data, [60_000, 40_000]);
  const put = await r.request(`${s.path}?digest=${sha256Bytes(Buffer.from("other"))}`, { method: "PUT", headers: bearer(token) });
  assert.equal(put.status, 400);
  assert.match(await put.text(), new RegExp(sha256Bytes(data)));
});
