// The hash window: pages written ahead of the hash are kept whole and given back byte for byte,
// pages too far ahead or only partly written are left to the file, and the prefix hasher takes
// what the window holds instead of reading it back.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HashWindow } from "@corral/shared/hash-window";
import { prefixHasher } from "@corral/shared/prefix-hasher";
import { openDirectSync } from "@corral/shared/direct-io";

const PAGE = 4096;

test("whole pages within reach of the hash are held; the rest are not", () => {
  const w = new HashWindow(HashWindow.create(16 * PAGE));
  const data = randomBytes(64 * PAGE);
  // Pages 2-5 whole, plus the end of page 1 and the start of page 6.
  w.put(data.subarray(PAGE + 100, 6 * PAGE + 100), 5 * PAGE, PAGE + 100);
  assert.equal(w.held(0, data.length), 0);
  assert.equal(w.held(PAGE + 200, data.length), 0, "a page written in part is not held");
  assert.equal(w.nextHeld(0, data.length), 2 * PAGE);
  assert.equal(w.held(2 * PAGE + 10, data.length), 4 * PAGE - 10);
  assert.ok(w.view(2 * PAGE + 10, 4 * PAGE - 10).equals(data.subarray(2 * PAGE + 10, 6 * PAGE)));
  assert.equal(w.held(2 * PAGE, 3 * PAGE + 7), PAGE + 7, "held stops at upTo");
  // Page 20 is past the 16 slots ahead of the hash (still at page 0): not kept.
  w.put(data.subarray(20 * PAGE, 21 * PAGE), PAGE, 20 * PAGE);
  assert.equal(w.held(20 * PAGE, data.length), 0);
  // Once the hash passed page 10, page 20 is within reach; it takes slot 4, which page 4 had.
  w.hashedTo(10 * PAGE + 1);
  w.put(data.subarray(20 * PAGE, 22 * PAGE), 2 * PAGE, 20 * PAGE);
  assert.equal(w.held(20 * PAGE, data.length), 2 * PAGE);
  assert.ok(w.view(20 * PAGE, 2 * PAGE).equals(data.subarray(20 * PAGE, 22 * PAGE)));
  assert.equal(w.held(4 * PAGE, data.length), 0, "a reused slot no longer answers for its old page");
  // A stretch held across the end of the slots comes back as two, each one piece of memory.
  w.hashedTo(14 * PAGE);
  w.put(data.subarray(14 * PAGE, 19 * PAGE), 5 * PAGE, 14 * PAGE);
  assert.equal(w.held(14 * PAGE, data.length), 2 * PAGE);
  assert.equal(w.held(16 * PAGE, data.length), 3 * PAGE);
  assert.ok(w.view(16 * PAGE, 3 * PAGE).equals(data.subarray(16 * PAGE, 19 * PAGE)));
});

test("the prefix hasher takes the pages the window holds instead of the file's", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "corral-window-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const size = (80 << 20) + 4321;
  const data = randomBytes(size);
  const path = join(dir, "blob");
  const fh = await open(path, "w");
  await fh.truncate(size);
  const hasher = await prefixHasher(path, size);
  assert.ok(hasher.window, "a large file's hasher has a window");
  const w = new HashWindow(hasher.window);
  // Parts arrive out of order, each 3 MB and a bit; every other one reaches the window, and the
  // file gets other bytes there, so that a digest that read those back would not match.
  const part = 3_000_001;
  const parts = Array.from({ length: Math.ceil(size / part) }, (_, i) => i);
  for (let i = 0; i < parts.length; i += 2) [parts[i], parts[i + 1]] = [parts[i + 1] ?? parts[i]!, parts[i]!];
  const done = new Set<number>();
  let front = 0;
  for (const i of parts) {
    const at = i * part;
    const bytes = data.subarray(at, Math.min(at + part, size));
    if (i % 2 === 0) {
      w.put(bytes, bytes.length, at);
      // Only the pages the window took get other bytes in the file.
      const first = Math.ceil(at / PAGE) * PAGE;
      const end = Math.floor((at + bytes.length) / PAGE) * PAGE;
      const onDisk = Buffer.from(bytes);
      for (let p = first; p < end; p += PAGE) if (w.held(p, p + 1) === 1) onDisk.fill(0, p - at, p - at + PAGE);
      await fh.write(onDisk, 0, onDisk.length, at);
    } else {
      await fh.write(bytes, 0, bytes.length, at);
    }
    done.add(i);
    while (done.has(front)) front++;
    hasher.follow(Math.min(front * part, size));
  }
  await fh.close();
  assert.equal(await hasher.finish(size), `sha256:${createHash("sha256").update(data).digest("hex")}`);
});

test("the window's memory is mapped once, in the order the parts' writers reach it, and mapping keeps what was written", () => {
  const MiB = 1 << 20;
  const w = new HashWindow(HashWindow.create(16 * MiB));
  // Parts of 2 MiB, four at a time: the first megabyte of parts 0-3, their second, then parts 4-7.
  const order = w.mappingOrder(2 * MiB, 4);
  assert.deepEqual(order.slice(0, 5), [
    [0, MiB],
    [2 * MiB, 3 * MiB],
    [4 * MiB, 5 * MiB],
    [6 * MiB, 7 * MiB],
    [MiB, 2 * MiB],
  ]);
  assert.deepEqual(order[8], [8 * MiB, 9 * MiB]);
  const sorted = [...order].sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [start, end] of sorted) {
    assert.equal(start, at, "every byte of the window once");
    at = end;
  }
  assert.equal(at, 16 * MiB);
  assert.deepEqual(w.mappingOrder(undefined), [[0, 16 * MiB]], "no part size: front to back");
  assert.deepEqual(w.mappingOrder(32 * MiB), [[0, 16 * MiB]], "parts larger than the window: front to back");
  const small = w.mappingOrder(2 * MiB, 4, 5 * MiB + 10);
  assert.deepEqual(
    [...small].sort((a, b) => a[0] - b[0]).at(-1),
    [5 * MiB, 5 * MiB + 10],
    "a file smaller than the window: only the memory it uses",
  );

  const data = randomBytes(8 * PAGE);
  w.put(data, data.length, 0);
  for (const [start, end] of order) w.map(start, end);
  assert.ok(w.view(0, data.length).equals(data));
});

test("claimed slots take a stretch of pages in place: held once written, never beyond the hash's reach or the slots' end", (t) => {
  const w = new HashWindow(HashWindow.create(16 * PAGE));
  const data = randomBytes(32 * PAGE);
  assert.equal(w.claim(100, PAGE), undefined, "off a page");
  const v = w.claim(2 * PAGE, 3 * PAGE)!;
  assert.equal(v.length, 3 * PAGE);
  v.fill(data.subarray(2 * PAGE, 5 * PAGE));
  assert.equal(w.held(2 * PAGE, data.length), 0, "not held before it is written");
  w.hold(2 * PAGE, 3 * PAGE);
  assert.equal(w.held(2 * PAGE, data.length), 3 * PAGE);
  assert.ok(w.view(2 * PAGE, 3 * PAGE).equals(data.subarray(2 * PAGE, 5 * PAGE)));
  assert.equal(w.claim(15 * PAGE, 4 * PAGE)!.length, PAGE, "a stretch ends where the slots wrap");
  assert.equal(w.claim(16 * PAGE, PAGE), undefined, "page 16 would take the slot of page 0, which the hash has not taken");
  w.hashedTo(4 * PAGE);
  assert.equal(w.claim(16 * PAGE, 8 * PAGE)!.length, 4 * PAGE, "up to page 19, whose slot page 3 left");
  assert.equal(w.claim(3 * PAGE, PAGE), undefined, "behind the hash");
  assert.equal(w.claim(18 * PAGE, 100)!.length, 100, "a stretch as short as asked");

  // The slots start on a page, so a file opened with O_DIRECT can be written from them.
  const dir = mkdtempSync(join(tmpdir(), "corral-window-direct-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "blob");
  writeFileSync(path, Buffer.alloc(0));
  const fd = openDirectSync(path, constants.O_WRONLY);
  if (fd === undefined) return t.diagnostic("this filesystem refuses O_DIRECT");
  try {
    assert.equal(writeSync(fd, w.claim(16 * PAGE, 2 * PAGE)!, 0, 2 * PAGE, 0), 2 * PAGE);
  } finally {
    closeSync(fd);
  }
  assert.equal(readFileSync(path).length, 2 * PAGE);
});

test("a finished download's window serves the next one, emptied", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "corral-window-reuse-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const size = (72 << 20) + 100;
  const first = randomBytes(size);
  const second = randomBytes(size);
  const a = join(dir, "a");
  const b = join(dir, "b");
  writeFileSync(a, first);
  writeFileSync(b, second);
  const hashA = await prefixHasher(a, size);
  // Every whole page of the first file in the window, as a download's writer leaves them.
  new HashWindow(hashA.window!).put(first, (64 << 20), 0);
  hashA.follow(size);
  assert.equal(await hashA.finish(size), `sha256:${createHash("sha256").update(first).digest("hex")}`);
  const hashB = await prefixHasher(b, size);
  // ok(), not equal(): a failure would print the window's 128 MiB.
  assert.ok(hashB.window === hashA.window, "the same memory, its pages already mapped");
  // Nothing of the second file was put in the window: a tag left from the first would hand its
  // bytes to this hash.
  assert.equal(await hashB.finish(size), `sha256:${createHash("sha256").update(second).digest("hex")}`);
  // A window made for a larger file serves a smaller one too (the 100 MB blob's window serves the
  // 1 GB blob after it, and the other way round), mapping only what the file uses.
  const larger = await prefixHasher(b, size + (8 << 20));
  assert.ok(larger.window === hashB.window, "a window serves a file of another size");
  await larger.close();
  assert.equal(HashWindow.reuse(HashWindow.create(16 * PAGE), 17 * PAGE), false, "a window with fewer slots than the file would get is not reused");
  assert.equal(HashWindow.reuse(HashWindow.create(16 * PAGE), 8 * PAGE), true, "one with more is");
});
