// A waiting limit: never more holders than its maximum, places handed on in the order asked.

import { test } from "node:test";
import assert from "node:assert/strict";
import { WaitingLimit } from "@corral/shared/waiting-limit";

test("callers beyond the limit wait, and get places in the order they asked", async () => {
  const limit = new WaitingLimit(2);
  await limit.enter();
  await limit.enter();
  const order: number[] = [];
  const third = limit.enter().then(() => order.push(3));
  const fourth = limit.enter().then(() => order.push(4));
  await Promise.resolve();
  assert.deepEqual(order, []);
  assert.equal(limit.holders, 2);
  assert.equal(limit.waiters, 2);

  limit.leave();
  await third;
  assert.deepEqual(order, [3]);
  assert.equal(limit.holders, 2, "the place went to the third caller, not back to the pool");

  limit.leave();
  await fourth;
  assert.deepEqual(order, [3, 4]);
  limit.leave();
  limit.leave();
  assert.equal(limit.holders, 0);
  assert.equal(limit.waiters, 0);
});

test("a caller that arrives while others wait queues behind them, even when a place is free", async () => {
  const limit = new WaitingLimit(1);
  await limit.enter();
  const order: string[] = [];
  const first = limit.enter().then(() => order.push("first"));
  limit.leave();
  // The place is the first waiter's now; a newcomer does not overtake it.
  const late = limit.enter().then(() => order.push("late"));
  await first;
  limit.leave();
  await late;
  assert.deepEqual(order, ["first", "late"]);
});

test("a limit below one is refused", () => {
  assert.throws(() => new WaitingLimit(0), RangeError);
});
