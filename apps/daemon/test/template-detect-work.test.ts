// Template detection keeps its edit-distance search to the band |i − j| ≤ max: its work grows with
// the templates' length times the cut-off, not with the product of the two lengths. Counted, not
// timed (test/helpers/count-steps.ts): the JavaScript blocks executed for templates of length n
// and 2n double within the band and would quadruple over the whole table.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { assertLinearSteps, countSteps } from "../../../test/helpers/count-steps.ts";

// Loaded once counting has started, so that all of its code is counted.
const { detectTemplate, editDistanceWithin, MAX_TEMPLATE_DISTANCE } = await import("../src/create/template-detect.ts");

const DETECT = /\/apps\/daemon\/src\/create\/template-detect\.ts$/;

/** Pseudo-random text of `n` characters from a small alphabet, and a copy with `edits` changes. */
function nearPair(n: number, edits: number, seed: number): [string, string] {
  let x = seed;
  const next = (k: number): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % k;
  };
  const a = Array.from({ length: n }, () => "{}%<>|_ abcdefghij\n"[next(19)]).join("");
  const b = [...a];
  for (let i = 0; i < edits; i++) b[next(n)] = "#";
  return [a, b.join("")];
}

test("the edit distance keeps to its band: twice the length, twice the work", async () => {
  const max = MAX_TEMPLATE_DISTANCE - 1;
  // Pairs within the cut-off, so that the search runs to the end rather than giving up early.
  for (const n of [3000, 6000]) assert.ok(editDistanceWithin(...nearPair(n, 40, 1), max) <= 40);
  await assertLinearSteps("the edit distance of two near texts", DETECT, (n) => editDistanceWithin(...nearPair(n, 40, 1), max), 3000);
});

test("detection over the longest reference costs about one band search over it", async () => {
  const input = readFileSync(new URL("../src/create/templates/llama3-instruct.llama-3.1-8b-instruct.jinja", import.meta.url), "utf8").replace("26 Jul 2024", "01 Jan 2025");
  const [a, b] = nearPair([...input].length, 40, 2);
  // One full band search over text as long as the input: what each reference may cost at most.
  const band = await countSteps(DETECT, () => editDistanceWithin(a, b, MAX_TEMPLATE_DISTANCE - 1));
  let name: string | undefined;
  const steps = await countSteps(DETECT, () => (name = detectTemplate(input)?.name));
  assert.equal(name, "llama3-instruct");
  // The input is a reference itself: other references give up within a few rows or are not
  // searched once a match is exact, so detection is one band search and little besides.
  assert.ok(steps <= 2 * band, `detection executed ${steps} blocks; one band search over its length is ${band}`);
});
