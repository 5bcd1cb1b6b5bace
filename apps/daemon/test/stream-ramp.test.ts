// The number of ranges a pull fetches at once: the ramp against simulated links on a virtual
// clock, and the runner that starts more work when the limit rises.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";
import { StreamRamp, streamRamp } from "../src/registry-client/stream-ramp.ts";
import { forEachLimit, type RisingLimit } from "../src/registry-client/parts.ts";

const MBps = 1000; // bytes per millisecond in one MB/s

/**
 * Feeds the ramp `seconds` of a transfer whose throughput (MB/s) is `rate(level, t)`, in 10 ms
 * steps; returns the levels it went through and how often it asked for more streams.
 */
function simulate(rate: (level: number, seconds: number) => number, seconds = 30): { levels: number[]; raises: number; ramp: StreamRamp } {
  let now = 0;
  const ramp = new StreamRamp(4, 16, () => now);
  let raises = 0;
  ramp.onRaise = () => raises++;
  const levels = [ramp.limit];
  for (; now < seconds * 1000; now += 10) {
    ramp.wrote(rate(ramp.limit, now / 1000) * MBps * 10);
    if (ramp.limit !== levels.at(-1)) levels.push(ramp.limit);
  }
  return { levels, raises, ramp };
}

test("a link where each stream is held back by latency gets sixteen streams", () => {
  const { levels, raises, ramp } = simulate((level) => level * 12);
  assert.equal(ramp.limit, 16);
  assert.equal(Math.max(...levels), 16);
  assert.ok(raises >= 2, `asked for more streams ${raises} times`);
});

test("a link that four streams already fill stays at four", () => {
  const { levels, ramp } = simulate(() => 300);
  assert.equal(ramp.limit, 4);
  // Eight were tried once, sixteen never.
  assert.deepEqual(levels, [4, 8, 4]);
});

test("throughput that drifts upwards on its own does not pass for a gain from more streams", () => {
  const { ramp } = simulate((_level, t) => 150 + 120 * t);
  assert.equal(ramp.limit, 4);
});

test("a link that gains from eight streams but not from sixteen settles at eight", () => {
  const { ramp } = simulate((level) => Math.min(level, 8) * 40);
  assert.equal(ramp.limit, 8);
});

test("CORRAL_TRANSFER_CONCURRENCY fixes the number of streams", () => {
  let now = 0;
  const fixed = streamRamp(loadConfig({ CORRAL_TRANSFER_CONCURRENCY: "2" }));
  assert.equal(fixed.limit, 2);
  for (; now < 10_000; now += 10) fixed.wrote(1 << 20);
  assert.equal(fixed.limit, 2);
  assert.equal(streamRamp(loadConfig({})).limit, 4);
});

test("forEachLimit starts more work as soon as a rising limit rises, and never more than it allows", async () => {
  const limit: RisingLimit & { limit: number } = { limit: 2, onRaise: () => {} };
  let running = 0;
  let most = 0;
  const done: number[] = [];
  const items = Array.from({ length: 12 }, (_, i) => i);
  const run = forEachLimit(items, limit, async (i) => {
    running++;
    most = Math.max(most, running);
    assert.ok(running <= limit.limit, `${running} running with a limit of ${limit.limit}`);
    if (i === 3) {
      limit.limit = 5;
      limit.onRaise();
    }
    await new Promise((r) => setTimeout(r, 5));
    running--;
    done.push(i);
  });
  await run;
  assert.deepEqual([...done].sort((a, b) => a - b), items);
  assert.equal(most, 5);
});

test("forEachLimit raises the first failure once the running items have finished, and starts no more", async () => {
  const started: number[] = [];
  const finished: number[] = [];
  await assert.rejects(
    forEachLimit([0, 1, 2, 3, 4, 5], 3, async (i) => {
      started.push(i);
      if (i === 1) throw new Error("part 1 failed");
      await new Promise((r) => setTimeout(r, 20));
      finished.push(i);
    }),
    /part 1 failed/,
  );
  assert.deepEqual(started, [0, 1, 2]);
  assert.deepEqual(finished.sort(), [0, 2]);
  assert.equal(await forEachLimit([], 4, async () => assert.fail("nothing to run")), undefined);
});
