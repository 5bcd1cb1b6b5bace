// The running sha256 of an upload on its own thread (services/upload-hash.ts): bytes in shared
// memory are hashed where they lie and their promise settles once they are, other bytes are
// copied; either way, and mixed, the digest is the sha256 of every byte in order. A hash whose
// thread ended refuses its digest (the final PUT then reads the upload back), and the next hash
// starts a new thread.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { sha256Bytes } from "@corral/shared/digest";
import { onHashThreadFailure, startHash, stopHashThread } from "../src/services/upload-hash.ts";

/** `data` in shared memory, as the filesystem store's buffers are. */
function shared(data: Buffer): Buffer {
  const b = Buffer.from(new SharedArrayBuffer(data.length));
  data.copy(b);
  return b;
}

test("shared, copied and mixed bytes give the sha256 of all of them in order", async () => {
  const data = randomBytes(5 * (1 << 20) + 12345);
  const cuts = [0, 1000, (1 << 20) + 7, 3 * (1 << 20), 3 * (1 << 20) + 65536, data.length];
  const pieces = cuts.slice(1).map((end, i) => data.subarray(cuts[i], end));

  const copied = startHash();
  let pending = 0;
  for (const p of pieces) {
    const handed = copied.update(p);
    // Bytes are copied into megabytes; only an update that filled one is waited for.
    assert.equal(handed instanceof Promise, pending + p.length >= 1 << 20, `piece of ${p.length} bytes after ${pending}`);
    pending = (pending + p.length) % (1 << 20);
    await handed;
  }
  assert.equal(await copied.digest(), sha256Bytes(data));

  const inPlace = startHash();
  const views = pieces.map(shared);
  const seen = views.map((v) => inPlace.update(v));
  assert.ok(seen.every((p) => p instanceof Promise), "shared bytes are hashed where they lie");
  await Promise.all(seen);
  // Settled: the buffers may be reused, and reusing them changes nothing.
  views.forEach((v) => v.fill(0));
  assert.equal(await inPlace.digest(), sha256Bytes(data));

  const mixed = startHash();
  await Promise.all(pieces.map((p, i) => mixed.update(i % 2 === 0 ? shared(p) : p)));
  assert.equal(await mixed.digest(), sha256Bytes(data));
});

test("hashes of several uploads run side by side without mixing", async () => {
  const datas = [0, 1, 2].map(() => randomBytes(3 * (1 << 20) + 1));
  const hashes = datas.map(() => startHash());
  for (let at = 0; at < datas[0]!.length; at += 1 << 19) {
    await Promise.all(hashes.map((h, i) => h.update(shared(datas[i]!.subarray(at, at + (1 << 19))))));
  }
  assert.deepEqual(await Promise.all(hashes.map((h) => h.digest())), datas.map(sha256Bytes));
  const empty = startHash();
  assert.equal(await empty.digest(), sha256Bytes(Buffer.alloc(0)));
});

test("a hash whose thread ended refuses its digest; the next hash starts another thread", async () => {
  const data = randomBytes(2 << 20);
  const heard: Error[] = [];
  const unwatch = onHashThreadFailure((e) => heard.push(e));
  const h = startHash();
  await h.update(shared(data));
  await stopHashThread({ asFailure: true });
  assert.equal(heard.length, 1, "a failed thread is told to whoever watches (serve logs it)");
  unwatch();
  // Bytes added after the thread ended are let go at once, never waited on.
  assert.equal(await h.update(shared(data)), undefined);
  await assert.rejects(h.digest(), /ended/);

  const next = startHash();
  await next.update(shared(data));
  assert.equal(await next.digest(), sha256Bytes(data));

  // Ended on purpose, it is no failure to tell.
  const quiet = onHashThreadFailure((e) => heard.push(e));
  startHash().discard();
  await stopHashThread();
  quiet();
  assert.equal(heard.length, 1);
});

test("a spent hash refuses more bytes; a discarded one ignores them; discarding twice is harmless", async () => {
  const h = startHash();
  h.update(Buffer.from("abc"));
  assert.equal(await h.digest(), sha256Bytes(Buffer.from("abc")));
  assert.throws(() => h.update(Buffer.from("d")), /spent/);
  await assert.rejects(h.digest(), /spent/);
  const d = startHash();
  d.discard();
  d.discard();
  // A failed chunk discards its hash while the rest of its body may still stream through the
  // store's transform: a throw there ended the registry (S3 stopped mid-upload).
  assert.equal(d.update(Buffer.from("d")), undefined);
  assert.equal(d.update(Buffer.from(new SharedArrayBuffer(8))), undefined);
  await assert.rejects(d.digest(), /spent/);
});
