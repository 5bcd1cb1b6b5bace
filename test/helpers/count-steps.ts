// A measure of work that does not depend on the machine's speed, for tests that bound how much a
// piece of code may do: the JavaScript blocks V8 executes (precise block coverage counts every entry
// into a function, loop body or branch). A timing bound fails on a loaded machine and lets a
// regression through on a fast one; this count gives the same answer everywhere.
//
// V8 counts blocks only in functions compiled after counting started, and a module's static
// imports are compiled before any of its code runs; so counting starts when this module is
// evaluated, and a test loads the modules whose work it counts afterwards, with a dynamic
// import(). countSteps refuses to answer for code compiled earlier rather than undercount it.
// Counting keeps V8 from optimizing, so a file that imports this runs slower throughout.

import assert from "node:assert/strict";
import { Session } from "node:inspector";

interface FunctionCoverage {
  functionName: string;
  isBlockCoverage: boolean;
  ranges: Array<{ count: number }>;
}
interface ScriptCoverage {
  url: string;
  functions: FunctionCoverage[];
}

const session = new Session();
session.connect();

/** Posts to the in-thread inspector, whose callbacks run before post returns. */
function post<T>(method: string, params: object = {}): T {
  let out: { result: T } | { error: Error } | undefined;
  session.post(method, params, (error, result) => {
    out = error ? { error } : { result: result as T };
  });
  if (!out) throw new Error(`the inspector did not answer ${method} at once`);
  if ("error" in out) throw out.error;
  return out.result;
}

post("Profiler.enable");
// Exact counts of every block, not samples.
post("Profiler.startPreciseCoverage", { callCount: true, detailed: true });

/**
 * The number of JavaScript blocks executed in modules whose URL matches `files` while `fn` runs.
 * Work done inside built-ins (a RegExp, String.prototype.indexOf) counts as the one block that
 * called them, so this bounds loops written in JavaScript, not the built-ins they call. Infinity
 * when one block ran more than 2^31 times.
 */
export async function countSteps(files: RegExp, fn: () => unknown): Promise<number> {
  post("Profiler.takePreciseCoverage"); // resets the counters
  await fn();
  const { result } = post<{ result: ScriptCoverage[] }>("Profiler.takePreciseCoverage");
  let steps = 0;
  for (const script of result) {
    if (!files.test(script.url)) continue;
    for (const f of script.functions) {
      if (!f.isBlockCoverage && f.ranges[0]!.count > 0) {
        throw new Error(`${script.url}: ${f.functionName || "a function"} was compiled before counting started; load it with import() after importing test/helpers/count-steps.ts`);
      }
      // V8 keeps 32-bit counters that the inspector reports signed: a negative one has wrapped.
      for (const r of f.ranges) steps += r.count < 0 ? Infinity : r.count;
    }
  }
  return steps;
}

/**
 * Fails unless `run(2n)` executes at most 2.1 times the blocks of `run(n)` in `files`: linear work
 * doubles, work quadratic in n about quadruples, and a walk exponential in n does not end before
 * the test runner's overall limit. A small run goes first, so that what runs once per process
 * (compiling, tables built on first use) is not counted against n.
 */
export async function assertLinearSteps(what: string, files: RegExp, run: (n: number) => unknown, n: number): Promise<void> {
  await countSteps(files, () => run(Math.max(1, Math.floor(n / 16))));
  const once = await countSteps(files, () => run(n));
  assert.ok(once >= n, `${what}: ${once} blocks for n = ${n}: the work is not being counted`);
  const twice = await countSteps(files, () => run(2 * n));
  assert.ok(twice <= 2.1 * once, `${what}: ${once} blocks for n = ${n} but ${twice} for n = ${2 * n}`);
}
