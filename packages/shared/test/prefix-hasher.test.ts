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

async function followWhileWriting(size: number, step: number): Promise<void> {
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
    assert.equal(await hasher.finish(size), `sha256:${createHash("sha256").update(data).digest("hex")}`);
    await hasher.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a small file is hashed as it grows (this thread)", () => followWhileWriting(3 << 20, 300_001));

test("a large file is hashed as it grows (worker thread)", () => followWhileWriting(80 << 20, 5 << 20));

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
