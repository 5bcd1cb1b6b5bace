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

/** Page faults this process has taken so far (minor: pages first touched). */
const faults = (): number => Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[7]);

/** Lets `turns` turns of the event loop pass (mapAhead maps one buffer per turn). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

test("mapAhead maps a new block's pages in the turns after it is made, and changes no byte", async () => {
  const COUNT = 16;
  const PAGES = (COUNT * (1 << 20)) / 4096;
  const touchAll = (bufs: Buffer[]): number => {
    const before = faults();
    for (const b of bufs) for (let i = 0; i < b.length; i += 4096) b[i] = 1;
    return faults() - before;
  };
  const pool = new BufferPool(1 << 20, COUNT, { pageAligned: true, shared: true, mapAhead: true });
  const first = pool.take();
  first.fill(7);
  const second = pool.take();
  second.fill(9);
  // A pool without it, for comparison: the first write to each page of its block takes a fault.
  const plain = new BufferPool(1 << 20, COUNT, { pageAligned: true, shared: true });
  const plainBufs = Array.from({ length: COUNT }, () => plain.take());
  await turns(COUNT + 2);
  assert.ok(first.every((x) => x === 7) && second.every((x) => x === 9), "mapping changed bytes of buffers in use");
  const plainFaults = touchAll(plainBufs);
  const mappedFaults = touchAll(Array.from({ length: COUNT - 2 }, () => pool.take()));
  // Where the kernel backs such memory with huge pages of its own accord, fresh pages take few
  // faults either way and there is nothing to tell apart.
  if (plainFaults >= PAGES / 2) assert.ok(mappedFaults < PAGES / 8, `the block's pages were mapped ahead (${mappedFaults} faults, ${plainFaults} without)`);
});
