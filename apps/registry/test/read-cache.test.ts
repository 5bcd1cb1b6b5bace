// The read cache keeps a lookup only while no write has changed its tables: the code that writes
// says which tables it changes, lookups during a write go to the database, and a lookup that
// straddles a write's start or end answers but is not kept. With PostgreSQL it keeps nothing.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { blobs, manifests, tags } from "../src/db/schema.ts";
import { ReadCache, type MemoSpec } from "../src/services/read-cache.ts";

/** A lookup that counts its loads and returns the load number. */
function counter(): { load: () => Promise<number>; loads: () => number } {
  let n = 0;
  return { load: async () => ++n, loads: () => n };
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const spec = (extra: Partial<MemoSpec<number>> = {}): MemoSpec<number> => ({ tables: [tags, manifests], max: 100, ...extra });

describe("the read cache", () => {
  test("a lookup is remembered until a write changes one of its tables", async () => {
    const cache = new ReadCache(true);
    const s = spec();
    const { load, loads } = counter();
    assert.equal(await cache.read(s, "a", load), 1);
    assert.equal(await cache.read(s, "a", load), 1, "answered from memory");
    await cache.changing([blobs], async () => {});
    assert.equal(await cache.read(s, "a", load), 1, "a table it does not read changed: still remembered");
    await cache.changing([tags], async () => {});
    assert.equal(await cache.read(s, "a", load), 2, "a table it reads changed: loaded again");
    assert.equal(loads(), 2);
  });

  test("with PostgreSQL nothing is kept", async () => {
    const cache = new ReadCache(false);
    const s = spec();
    const { load } = counter();
    assert.equal(await cache.read(s, "a", load), 1);
    assert.equal(await cache.read(s, "a", load), 2);
    assert.equal(await cache.changing([tags], async () => "written"), "written");
  });

  test("while a write runs, lookups of its tables go to the database and keep nothing", async () => {
    const cache = new ReadCache(true);
    const s = spec();
    const { load } = counter();
    assert.equal(await cache.read(s, "a", load), 1);
    const release = deferred();
    const writing = cache.changing([manifests], () => release.promise);
    assert.equal(await cache.read(s, "a", load), 2, "the remembered answer is dropped when the write starts");
    assert.equal(await cache.read(s, "a", load), 3, "and nothing is kept during it");
    release.resolve();
    await writing;
    assert.equal(await cache.read(s, "a", load), 4);
    assert.equal(await cache.read(s, "a", load), 4, "kept again once the write is over");
  });

  test("a lookup that straddles the start or the end of a write is answered but not kept", async () => {
    const cache = new ReadCache(true);
    const s = spec();
    const slow = deferred<number>();
    const reading = cache.read(s, "a", () => slow.promise);
    await cache.changing([tags], async () => {});
    slow.resolve(10);
    assert.equal(await reading, 10);
    const { load } = counter();
    assert.equal(await cache.read(s, "a", load), 1, "the straddling answer was not kept");

    const release = deferred();
    const writing = cache.changing([tags], () => release.promise);
    const slower = deferred<number>();
    const during = cache.read(s, "b", () => slower.promise);
    release.resolve();
    await writing;
    slower.resolve(20);
    assert.equal(await during, 20);
    assert.equal(await cache.read(s, "b", load), 2, "a lookup that began during the write was not kept");
  });

  test("a lookup first made during a write keeps nothing until that write ends", async () => {
    const cache = new ReadCache(true);
    const release = deferred();
    const writing = cache.changing([tags], () => release.promise);
    const s = spec();
    const { load } = counter();
    assert.equal(await cache.read(s, "a", load), 1);
    assert.equal(await cache.read(s, "a", load), 2);
    release.resolve();
    await writing;
    assert.equal(await cache.read(s, "a", load), 3);
    assert.equal(await cache.read(s, "a", load), 3);
  });

  test("a write that fails still ends, and its error reaches the caller", async () => {
    const cache = new ReadCache(true);
    const s = spec();
    const { load } = counter();
    await cache.read(s, "a", load);
    await assert.rejects(
      cache.changing([tags], async () => {
        throw new Error("conflict");
      }),
      /conflict/,
    );
    assert.equal(await cache.read(s, "a", load), 2, "what it may have changed is read again");
    assert.equal(await cache.read(s, "a", load), 2, "and kept: the failed write is over");
  });

  test("values `keep` refuses are not kept, and the oldest entry goes first", async () => {
    const cache = new ReadCache(true);
    const small = spec({ keep: (v) => v < 100 });
    assert.equal(await cache.read(small, "big", async () => 500), 500);
    assert.equal(await cache.read(small, "big", async () => 600), 600, "a refused value is loaded each time");

    const two = spec({ max: 2 });
    await cache.read(two, "x", async () => 1);
    await cache.read(two, "y", async () => 2);
    await cache.read(two, "z", async () => 3);
    assert.equal(await cache.read(two, "x", async () => 4), 4, "the oldest was forgotten");
    assert.equal(await cache.read(two, "z", async () => 5), 3, "the newest is still there");
  });
});
