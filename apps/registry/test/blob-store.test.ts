// One conformance suite, run against every BlobStore driver: the filesystem and S3 (s3rver).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { sha256Bytes } from "@corral/shared/digest";
import type { BlobStore } from "../src/storage/blob-store.ts";
import { BlobNotFoundError, isBlobStoreError } from "../src/storage/blob-store.ts";
import { backendFailure } from "../src/backend-errors.ts";
import { freePort } from "../../../test/helpers/ports.ts";
import { diskQueue, FilesystemBlobStore } from "../src/storage/filesystem.ts";
import { S3BlobStore } from "../src/storage/s3.ts";
import { loadConfig } from "../src/config.ts";
import { startS3, type S3Server } from "../../../test/helpers/s3.ts";

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function upload(store: BlobStore, chunks: Buffer[], knownLength = true): Promise<{ id: string; size: number }> {
  const id = randomUUID();
  await store.createUpload(id);
  let offset = 0;
  for (const c of chunks) {
    offset += await store.append(id, offset, Readable.from([c]), { length: knownLength ? c.length : undefined });
  }
  return { id, size: offset };
}

/** The optional capabilities a driver is expected to have, so that losing one fails its suite. */
interface Capabilities {
  presignedURLs: boolean;
  localFiles: boolean;
}

function conformance(name: string, has: Capabilities, open: () => Promise<BlobStore>, cleanup: () => Promise<void>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let store: BlobStore;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    test("a missing blob has no size and cannot be read", async () => {
      const d = sha256Bytes("nothing here");
      assert.equal(await store.stat(d), undefined);
      await assert.rejects(store.read(d), BlobNotFoundError);
    });

    test("chunks appended in order commit to a readable blob with ranges", async () => {
      const a = randomBytes(300_000);
      const b = randomBytes(123_457);
      const whole = Buffer.concat([a, b]);
      const digest = sha256Bytes(whole);
      const { id, size } = await upload(store, [a, b]);
      assert.equal(size, whole.length);
      assert.deepEqual(await collect(await store.readUpload(id, size)), whole);
      await store.commit(id, size, digest);
      assert.deepEqual(await store.stat(digest), { size: whole.length });
      assert.deepEqual(await collect(await store.read(digest)), whole);
      assert.deepEqual(await collect(await store.read(digest, { start: 299_990, end: 300_009 })), whole.subarray(299_990, 300_010));
      assert.deepEqual(await collect(await store.read(digest, { start: whole.length - 1, end: whole.length - 1 })), whole.subarray(-1));
      const listed: string[] = [];
      for await (const b2 of store.list()) listed.push(b2.digest);
      assert.ok(listed.includes(digest));
      const ids: string[] = [];
      for await (const u of store.listUploads()) ids.push(u.id);
      assert.ok(!ids.includes(id), "the upload area is gone after commit");
      await store.delete(digest);
      assert.equal(await store.stat(digest), undefined);
    });

    test("a chunk written again at the same offset replaces the interrupted one", async () => {
      const a = randomBytes(10_000);
      const b = randomBytes(5_000);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, Readable.from([a]), { length: a.length });
      await store.append(id, a.length, Readable.from([randomBytes(7_000)]), { length: 7_000 });
      await store.append(id, a.length, Readable.from([b]), { length: b.length });
      const whole = Buffer.concat([a, b]);
      const digest = sha256Bytes(whole);
      await store.commit(id, whole.length, digest);
      assert.deepEqual(await collect(await store.read(digest)), whole);
      await store.delete(digest);
    });

    test("megabytes at page-aligned and other offsets, one range written twice, read back whole", async () => {
      // The filesystem store writes whole megabytes at page-aligned offsets past the page cache
      // and the rest through it; both kinds of write land where they belong.
      const a = randomBytes(3 << 20);
      const b = randomBytes((1 << 20) + 123);
      const b2 = randomBytes((1 << 20) + 4196);
      const c = randomBytes((2 << 20) + 7);
      const id = randomUUID();
      await store.createUpload(id);
      let offset = await store.append(id, 0, Readable.from([a.subarray(0, 1 << 19), a.subarray(1 << 19)]), { length: a.length });
      await store.append(id, offset, Readable.from([b]), { length: b.length });
      offset += await store.append(id, offset, Readable.from([b2]), { length: b2.length });
      offset += await store.append(id, offset, Readable.from([c]), { length: c.length });
      const whole = Buffer.concat([a, b2, c]);
      assert.equal(offset, whole.length);
      const digest = sha256Bytes(whole);
      await store.commit(id, whole.length, digest);
      assert.deepEqual(await collect(await store.read(digest)), whole);
      await store.delete(digest);
    });

    test("a body of unknown length and an empty blob", async () => {
      const data = randomBytes(200_001);
      const { id, size } = await upload(store, [data], false);
      assert.equal(size, data.length);
      await store.commit(id, size, sha256Bytes(data));
      assert.deepEqual(await collect(await store.read(sha256Bytes(data))), data);
      const empty = await upload(store, []);
      await store.commit(empty.id, 0, sha256Bytes(""));
      assert.deepEqual(await store.stat(sha256Bytes("")), { size: 0 });
      assert.equal((await collect(await store.read(sha256Bytes("")))).length, 0);
    });

    test("a discarded upload leaves nothing behind", async () => {
      const { id } = await upload(store, [randomBytes(1000)]);
      let seen = false;
      for await (const u of store.listUploads()) if (u.id === id) seen = true;
      assert.ok(seen);
      await store.discardUpload(id);
      for await (const u of store.listUploads()) assert.notEqual(u.id, id);
    });

    test("keys that are not digests or upload ids are refused", async () => {
      await assert.rejects(store.stat("sha256:../../etc/passwd"), /refusing/);
      await assert.rejects(store.append("../x", 0, Readable.from([Buffer.from("x")]), { length: 1 }), /refusing/);
    });

    test("a presigned URL, when the store has them, serves ranges without credentials", async () => {
      const data = randomBytes(50_000);
      const { id, size } = await upload(store, [data]);
      const digest = sha256Bytes(data);
      await store.commit(id, size, digest);
      const url = await store.presignedURL(digest, 60);
      if (!has.presignedURLs) {
        assert.equal(url, undefined);
        return;
      }
      assert.ok(url);
      const res = await fetch(url, { headers: { Range: "bytes=100-199" } });
      assert.equal(res.status, 206);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), data.subarray(100, 200));
    });

    test("a local file range, when the store has them, is an open descriptor over exactly that range", async () => {
      assert.equal(typeof store.openRange === "function", has.localFiles);
      if (!store.openRange) return;
      const data = randomBytes(50_000);
      const { id, size } = await upload(store, [data]);
      const digest = sha256Bytes(data);
      await store.commit(id, size, digest);
      const slice = await store.openRange(digest, { start: 100, end: 199 });
      try {
        assert.deepEqual({ start: slice.start, end: slice.end }, { start: 100, end: 199 });
        const got = Buffer.alloc(100);
        assert.equal(readSync(slice.fd, got, 0, 100, slice.start), 100);
        assert.deepEqual(got, data.subarray(100, 200));
      } finally {
        closeSync(slice.fd);
      }
      await assert.rejects(store.openRange(sha256Bytes(randomBytes(8)), { start: 0, end: 0 }), BlobNotFoundError);
    });
  });
}

const fsRoot = mkdtempSync(join(tmpdir(), "corral-fsstore-"));
conformance("filesystem", { presignedURLs: false, localFiles: true }, () => new FilesystemBlobStore(fsRoot).init(), async () => rmSync(fsRoot, { recursive: true, force: true }));

test("uploads at once that together queue more than the disk queue holds all arrive whole", async (t) => {
  // The filesystem store bounds the bytes queued for the disk across all its uploads (64 MiB):
  // three uploads of 72 MiB at once, each fed from memory, can fill that queue and then wait on
  // each other's writes; however the disk keeps up, the bound holds and every byte lands.
  const root = mkdtempSync(join(tmpdir(), "corral-fsqueue-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const store = await new FilesystemBlobStore(root).init();
  const size = (72 << 20) + 123;
  const block = randomBytes(1 << 20);
  /** Upload `n`'s bytes: the block with the upload's number and the megabyte's stamped in, so no two megabytes agree. */
  function* body(n: number): Generator<Buffer> {
    for (let at = 0; at < size; at += block.length) {
      const mb = Buffer.from(block.subarray(0, Math.min(block.length, size - at)));
      mb.writeUInt32BE(n, 0);
      mb.writeUInt32BE(at / block.length, 4);
      for (let off = 0; off < mb.length; off += 65536) yield mb.subarray(off, off + 65536);
    }
  }
  const expected = [0, 1, 2].map((n) => {
    const h = createHash("sha256");
    for (const c of body(n)) h.update(c);
    return `sha256:${h.digest("hex")}`;
  });
  const ids = [0, 1, 2].map(() => randomUUID());
  await Promise.all(ids.map((id) => store.createUpload(id)));
  const seen = [0, 1, 2].map(() => createHash("sha256"));
  let most = 0;
  const observe = (n: number) => (b: Buffer) => {
    most = Math.max(most, diskQueue.holders);
    seen[n]!.update(b);
    return undefined;
  };
  const written = await Promise.all(ids.map((id, n) => store.append(id, 0, Readable.from(body(n)), { length: size, observe: observe(n) })));
  assert.deepEqual(written, [size, size, size]);
  assert.ok(most >= 1 && most <= diskQueue.max, `${most} megabytes queued for the disk at once, the bound is ${diskQueue.max}`);
  for (const [n, id] of ids.entries()) {
    assert.equal(`sha256:${seen[n]!.digest("hex")}`, expected[n], `upload ${n} was hashed out of order`);
    const back = createHash("sha256");
    for await (const c of await store.readUpload(id, size)) back.update(c as Buffer);
    assert.equal(`sha256:${back.digest("hex")}`, expected[n], `upload ${n} was written wrongly`);
    await store.discardUpload(id);
  }
  assert.equal(diskQueue.holders, 0, "every queued write gave its place back");
  await store.close();
});

// tmpfs refuses O_DIRECT: every write goes through the page cache there.
const shmRoot = existsSync("/dev/shm") ? mkdtempSync(join("/dev/shm", "corral-fsstore-")) : undefined;
if (shmRoot) conformance("filesystem on tmpfs", { presignedURLs: false, localFiles: true }, () => new FilesystemBlobStore(shmRoot).init(), async () => rmSync(shmRoot, { recursive: true, force: true }));

let s3: S3Server | undefined;
conformance(
  "s3 (s3rver)",
  { presignedURLs: true, localFiles: false },
  async () => {
    s3 = await startS3("conformance");
    return new S3BlobStore({
      bucket: "conformance-2",
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      checksums: "WHEN_REQUIRED",
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
    }).init();
  },
  async () => s3?.stop(),
);

test("S3_PRESIGNED_URLS=false: an S3 store hands out no presigned URL, so the registry serves the bytes itself", async () => {
  const server = await startS3("unsigned");
  const cfg = loadConfig({ S3_BUCKET: "unsigned", S3_ENDPOINT: server.endpoint, S3_FORCE_PATH_STYLE: "true", S3_PRESIGNED_URLS: "false", AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" });
  const store = await new S3BlobStore(cfg.s3!).init();
  try {
    const data = randomBytes(1000);
    const { id, size } = await upload(store, [data]);
    await store.commit(id, size, sha256Bytes(data));
    assert.equal(await store.presignedURL(sha256Bytes(data), 60), undefined);
    assert.throws(() => loadConfig({ S3_BUCKET: "b", S3_PRESIGNED_URLS: "sometimes" }), /S3_PRESIGNED_URLS: expected true or false/);
  } finally {
    await store.close();
    await server.stop();
  }
});

test("an S3 store that cannot be reached fails with an error the registry answers as 503, whatever shape the SDK gives it", async () => {
  const store = new S3BlobStore({ bucket: "absent", endpoint: `http://127.0.0.1:${await freePort()}`, region: "us-east-1", forcePathStyle: true, checksums: "WHEN_REQUIRED", accessKeyId: "k", secretAccessKey: "s" });
  try {
    const upload = randomUUID();
    const failed = await store.append(upload, 0, Readable.from([randomBytes(1024)]), { length: 1024 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(failed, "the append fails");
    assert.ok(isBlobStoreError(failed), `the driver marks it as the blob store's: ${String(failed)}`);
    assert.equal(backendFailure(failed, "PATCH /v2/a/b/blobs/uploads/x")?.code, "UNAVAILABLE");
  } finally {
    await store.close();
  }
});
