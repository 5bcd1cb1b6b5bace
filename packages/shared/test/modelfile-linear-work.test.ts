// The Modelfile parser's work is linear in the length of long values, quoted or open, full of
// spaces and line breaks. Work is counted, not timed, on an input and on one twice as long: the
// JavaScript blocks the parser executes (test/helpers/count-steps.ts) and the bytes it allocates
// (test/helpers/count-allocations.ts). Linear work doubles. Work that rescans the value so far at
// every space or line break about quadruples: in JavaScript loops (trimming the whole value each
// time) the block count shows it; inside built-ins (flattening the value built up so far, slicing
// or joining it) the allocations do. A built-in that only scans, allocating nothing, is seen by
// neither.

import assert from "node:assert/strict";
import { it } from "node:test";
import { assertLinearSteps } from "../../../test/helpers/count-steps.ts";
import { bytesAllocated } from "../../../test/helpers/count-allocations.ts";

// Loaded once counting has started, so that all of the parser's code is counted.
const { ModelfileError, parseModelfile } = await import("@corral/shared/modelfile/index");

const PARSER = /\/packages\/shared\/src\/modelfile\//;

function parse(text: string): void {
  try {
    parseModelfile(text);
  } catch (e) {
    if (!(e instanceof ModelfileError)) throw e;
  }
}

const shapes = [
  (n: number) => `FROM x\nSYSTEM """${"a ".repeat(n)}`,
  (n: number) => `FROM x\nTEMPLATE """${"a\n".repeat(n)}"""`,
  (n: number) => `FROM x\nLICENSE "${" \t".repeat(n)}`,
  (n: number) => `FROM x\nSYSTEM ${"word ".repeat(n)}`,
  (n: number) => `FROM x\n${"# comment\n".repeat(n)}`,
  (n: number) => `FROM x\nMESSAGE user """${'"" '.repeat(n)}"""`,
];
const n = 20_000;

it("executes blocks linear in the length of long values, quoted or open, with many spaces and line breaks", async () => {
  for (const shape of shapes) await assertLinearSteps(`${JSON.stringify(shape(2))}…`, PARSER, (k) => parse(shape(k)), n);
});

it("allocates bytes linear in the length of long values, quoted or open, with many spaces and line breaks", () => {
  for (const shape of shapes) {
    const what = `${JSON.stringify(shape(2))}…`;
    // The inputs are built outside the count; only the parser's own allocations are compared.
    const [short, long] = [shape(n), shape(2 * n)];
    bytesAllocated(() => parse(shape(100)));
    const once = bytesAllocated(() => parse(short));
    assert.ok(once >= n, `${what}: ${once} bytes for ${n} repeats: the parser's allocations are not being counted`);
    const twice = bytesAllocated(() => parse(long));
    // Allocation counts carry a little noise (code compiled meanwhile), hence more room than for blocks.
    assert.ok(twice <= 2.5 * once, `${what}: ${once} bytes allocated for ${n} repeats but ${twice} for ${2 * n}`);
  }
});
