// Pooled buffers: page-aligned ones are accepted by a file opened with O_DIRECT, are distinct, and
// come back from the pool once given; shared ones are all that and in shared memory.

import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, constants, mkdtempSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BufferPool } from "@corral/shared/buffer-pool";
import { openDirectSync } from "@corral/shared/direct-io";

test("page-aligned buffers are distinct, reused, and take direct writes", (t) => {
  const pool = new BufferPool(1 << 20, 4, { pageAligned: true });
  assert.equal(pool.aligned, true);
  const bufs = Array.from({ length: 6 }, () => pool.take());
  bufs.forEach((b, i) => b.fill(i + 1));
  bufs.forEach((b, i) => {
    assert.equal(b.length, 1 << 20);
    assert.ok(b.every((x) => x === i + 1), `buffer ${i} shares bytes with another`);
  });
  pool.give(bufs[0]!);
  assert.equal(pool.take(), bufs[0]);

  const dir = mkdtempSync(join(tmpdir(), "corral-pool-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "direct");
  // Undefined where the filesystem refuses direct writes (tmpfs).
  const fd = openDirectSync(path, constants.O_WRONLY | constants.O_CREAT);
  if (fd === undefined) return t.skip(`${tmpdir()} does not take O_DIRECT`);
  try {
    // A buffer off a page boundary would be refused with EINVAL.
    assert.equal(writeSync(fd, bufs[2]!, 0, 1 << 20, 0), 1 << 20);
  } finally {
    closeSync(fd);
  }
  assert.ok(readFileSync(path).equals(bufs[2]!));
});

test("without pageAligned the pool hands out ordinary buffers", () => {
  const pool = new BufferPool(4096, 2);
  assert.equal(pool.aligned, false);
  assert.equal(pool.take().length, 4096);
});

test("shared page-aligned buffers lie in shared memory, apart, and take direct writes", (t) => {
  const pool = new BufferPool(1 << 20, 3, { pageAligned: true, shared: true });
  const bufs = Array.from({ length: 4 }, () => pool.take());
  bufs.forEach((b, i) => b.fill(i + 1));
  bufs.forEach((b, i) => {
    // Another thread can read it where it lies (the registry's upload hash, services/upload-hash.ts).
    assert.ok(b.buffer instanceof SharedArrayBuffer, `buffer ${i} is not in shared memory`);
    assert.equal(b.byteOffset % 4096, 0);
    assert.ok(b.every((x) => x === i + 1), `buffer ${i} shares bytes with another`);
  });
  const dir = mkdtempSync(join(tmpdir(), "corral-pool-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openDirectSync(join(dir, "direct"), constants.O_WRONLY | constants.O_CREAT);
  if (fd === undefined) return t.skip(`${tmpdir()} does not take O_DIRECT`);
  try {
    assert.equal(writeSync(fd, bufs[1]!, 0, 1 << 20, 0), 1 << 20);
  } finally {
    closeSync(fd);
  }
  assert.ok(readFileSync(join(dir, "direct")).equals(bufs[1]!));
});
