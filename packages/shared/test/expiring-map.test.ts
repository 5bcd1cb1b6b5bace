// The bounded expiring map behind the registry's verified tokens and its mirror's remembered
// misses: entries answer until their time, the one set longest ago goes first when it is full,
// and setting a key again renews it and its place.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ExpiringMap } from "@corral/shared/expiring-map";

test("an entry answers until its time, then is gone", () => {
  const m = new ExpiringMap<string, number>(10);
  m.set("a", 1, 100);
  assert.equal(m.get("a", 99), 1);
  assert.equal(m.get("a", 100), undefined, "at its time it has expired");
  assert.equal(m.size, 0, "an expired entry is dropped as it is looked up");
  assert.equal(m.get("b", 0), undefined);
});

test("when full, the entry set longest ago goes first; setting again renews the place", () => {
  const m = new ExpiringMap<string, number>(3);
  m.set("a", 1, 1000);
  m.set("b", 2, 1000);
  m.set("c", 3, 1000);
  m.set("a", 4, 1000);
  m.set("d", 5, 1000);
  assert.equal(m.size, 3);
  assert.equal(m.get("b", 0), undefined, "b was set longest ago");
  assert.equal(m.get("a", 0), 4);
  assert.equal(m.get("c", 0), 3);
  assert.equal(m.get("d", 0), 5);
});

test("a map of no entries keeps none", () => {
  const m = new ExpiringMap<string, number>(0);
  m.set("a", 1, 1000);
  assert.equal(m.size, 0);
});
