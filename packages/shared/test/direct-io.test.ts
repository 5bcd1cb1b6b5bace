// Reads and writes past the page cache: whatever the offsets and lengths, the bytes that come back
// and the bytes that land in the file are the ones asked for; unaligned pieces go through the
// cache, and a filesystem that refuses O_DIRECT is met with the cached descriptor alone.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "node:fs/promises";
import { alignedBuffers, alignedSharedMemory, mapPages, openDirect, openDirectFd, openDirectSync, readSpan, readSpanSync, writeSlabFd, writeSlabs } from "@corral/shared/direct-io";

const SIZE = 3 * (1 << 20) + 12_345;

function setup(t: { after: (fn: () => void) => void }): { path: string; data: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "corral-direct-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "blob");
  const data = randomBytes(SIZE);
  writeFileSync(path, data);
  return { path, data };
}

// Offsets on and off page boundaries, spans shorter and longer than the buffer, and the file's end.
const spans: [number, number][] = [
  [0, SIZE],
  [1, 4095],
  [4095, 4097],
  [100_000, 2_000_003],
  [SIZE - 5000, SIZE],
  [(1 << 20) - 1, (2 << 20) + 1],
];

test("direct reads return exactly the bytes from pos up to upTo", async (t) => {
  const { path, data } = setup(t);
  const cached = openSync(path, "r");
  const direct = openDirectSync(path, constants.O_RDONLY);
  t.after(() => {
    closeSync(cached);
    if (direct !== undefined) closeSync(direct);
  });
  if (direct === undefined) t.diagnostic(`${tmpdir()} does not take O_DIRECT: only the cached path is tested`);
  const buf = alignedBuffers(1 << 20, 1)![0]!;
  for (const read of ["sync", "async"] as const) {
    for (const [from, upTo] of spans) {
      const got: Buffer[] = [];
      for (let pos = from; pos < upTo; ) {
        const args = [cached, direct, buf, pos, upTo, () => assert.fail("an aligned buffer was refused")] as const;
        const { at, n } = read === "sync" ? readSpanSync(...args) : await readSpan(...args);
        assert.ok(n > 0, `${read} read at ${pos} of ${from}-${upTo} got nothing`);
        got.push(Buffer.from(buf.subarray(at, at + n)));
        pos += n;
      }
      assert.ok(Buffer.concat(got).equals(data.subarray(from, upTo)), `${read} ${from}-${upTo}`);
    }
    // Past the end of the file there is nothing, not the rest of a page.
    const args = [cached, direct, buf, SIZE, SIZE + 100, () => {}] as const;
    assert.equal((read === "sync" ? readSpanSync(...args) : await readSpan(...args)).n, 0);
  }
});

test("a buffer direct I/O refuses is read again through the cache", async (t) => {
  const { path, data } = setup(t);
  const cached = openSync(path, "r");
  const direct = await openDirectFd(path, constants.O_RDONLY);
  t.after(() => {
    closeSync(cached);
    if (direct !== undefined) closeSync(direct);
  });
  if (direct === undefined) return t.skip(`${tmpdir()} does not take O_DIRECT`);
  // One byte past a page boundary: O_DIRECT answers EINVAL.
  const unaligned = alignedBuffers(2 << 20, 1)![0]!.subarray(1, (1 << 20) + 1);
  let refused = 0;
  const { at, n } = await readSpan(cached, direct, unaligned, 8192, 8192 + 50_000, () => refused++);
  assert.equal(refused, 1);
  assert.ok(unaligned.subarray(at, at + n).equals(data.subarray(8192, 8192 + 50_000)));
});

test("slabs land at their offsets, aligned or not", async (t) => {
  const { path } = setup(t);
  const cached = openSync(path, "r+");
  const direct = openDirectSync(path, constants.O_WRONLY);
  t.after(() => {
    closeSync(cached);
    if (direct !== undefined) closeSync(direct);
  });
  const expected = readFileSync(path);
  const buf = alignedBuffers(1 << 20, 1)![0]!;
  for (const [at, n] of [
    [0, 1 << 20],
    [4096 * 3, 4096 * 5],
    [777, 10_000],
    [(2 << 20) + 4096, 100_000],
  ] as const) {
    randomBytes(n).copy(buf);
    await writeSlabFd(cached, direct, { buf, n, at });
    buf.copy(expected, at, 0, n);
  }
  assert.ok(readFileSync(path).equals(expected));
});

test("slabs written together land as they would one by one: one vectored write when all are aligned, else each on its own", async (t) => {
  const { path } = setup(t);
  const cached = await open(path, "r+");
  const direct = await openDirect(path, constants.O_WRONLY);
  t.after(async () => {
    await cached.close();
    await direct?.close();
  });
  const expected = readFileSync(path);
  const bufs = alignedBuffers(1 << 20, 4)!;
  const MB = 1 << 20;
  for (const slabs of [
    // Aligned, one after another: one writev.
    [0, 1, 2].map((i) => ({ buf: bufs[i]!, n: MB, at: i * MB })),
    // The last one short of a page: the batch goes slab by slab, the short one through the cache.
    [
      { buf: bufs[0]!, n: MB, at: MB },
      { buf: bufs[1]!, n: 5000, at: 2 * MB },
    ],
    // One slab, and off a page: as writeSlab.
    [{ buf: bufs[3]!, n: 10_000, at: 777 }],
  ]) {
    for (const s of slabs) {
      randomBytes(s.n).copy(s.buf);
      s.buf.copy(expected, s.at, 0, s.n);
    }
    await writeSlabs(cached, direct, slabs);
  }
  assert.ok(readFileSync(path).equals(expected));
});

test("mapPages leaves every byte as it was, whatever the view's offset and length", () => {
  const memory = alignedSharedMemory(3 * 65536)!;
  const all = Buffer.from(memory);
  for (let i = 0; i < all.length; i++) all[i] = (i * 7) & 0xff;
  const copy = Buffer.from(all);
  for (const [start, end] of [
    [0, all.length],
    [1, 4099],
    [4093, 4095],
    [3, 3],
    [65535, all.length],
  ] as const) {
    mapPages(all.subarray(start, end));
  }
  assert.ok(all.equals(copy));
});
