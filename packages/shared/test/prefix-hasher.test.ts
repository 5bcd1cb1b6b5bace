// The hash that follows a file as it is written: the same digest as hashing the finished file,
// on this thread for small files and on a worker thread for large ones, and a clear error when
// the file is shorter than the caller says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prefixHasher } from "@corral/shared/prefix-hasher";

/** Writes `size` random bytes in steps of `step`, the hash following; returns the hashing thread's id. */
async function followWhileWriting(size: number, step: number): Promise<number | undefined> {
  const dir = await mkdtemp(join(tmpdir(), "corral-prefix-"));
  try {
    const path = join(dir, "blob");
    const data = randomBytes(size);
    const fh = await open(path, "w");
    await fh.truncate(size);
    const hasher = await prefixHasher(path, size);
    for (let at = 0; at < size; at += step) {
      await fh.write(data, at, Math.min(step, size - at), at);
      hasher.follow(Math.min(at + step, size));
    }
    await fh.close();
    // Read while the thread runs: a thread that has ended has none.
    const thread = hasher.threadId;
    assert.equal(await hasher.finish(size), `sha256:${createHash("sha256").update(data).digest("hex")}`);
    await hasher.close();
    return thread;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a small file is hashed as it grows (this thread)", async () => {
  assert.equal(await followWhileWriting(3 << 20, 300_001), undefined, "no thread is started");
});

test("a large file is hashed as it grows (worker thread)", async () => {
  assert.equal(typeof (await followWhileWriting(80 << 20, 5 << 20)), "number", "hashed on a thread of its own");
});

test("one hash thread serves large files one after another; one stopped half way or failed is not reused", async () => {
  const first = await followWhileWriting(70 << 20, 7 << 20);
  const second = await followWhileWriting(90 << 20, 3 << 20);
  assert.equal(typeof first, "number");
  assert.equal(second, first, "the second file is hashed by the first one's thread");

  const dir = await mkdtemp(join(tmpdir(), "corral-prefix-"));
  try {
    // Stopped half way (a failed download): its thread ends, and the next file gets a new one.
    const path = join(dir, "blob");
    await writeFile(path, randomBytes(80 << 20));
    const stopped = await prefixHasher(path, 80 << 20);
    stopped.follow(40 << 20);
    assert.equal(stopped.threadId, second);
    await stopped.close();
    const third = await followWhileWriting(80 << 20, 8 << 20);
    assert.notEqual(third, second, "a thread stopped half way is not kept");

    // A file shorter than promised: its error, and the next file still hashes right.
    await writeFile(path, randomBytes(1000));
    const short = await prefixHasher(path, 80 << 20);
    await assert.rejects(short.finish(80 << 20), /ends after 1000 bytes/);
    await short.close();
    assert.equal(typeof (await followWhileWriting(80 << 20, 8 << 20)), "number");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const size of [1 << 20, 80 << 20]) {
  test(`a file shorter than promised is an error, not a digest (${size} bytes)`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-prefix-"));
    try {
      const path = join(dir, "blob");
      await writeFile(path, randomBytes(1000));
      const hasher = await prefixHasher(path, size);
      await assert.rejects(hasher.finish(size), /ends after 1000 bytes, \d+ were expected/);
      await hasher.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
