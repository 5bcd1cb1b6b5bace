// Quantization keeps a trained model's predictions: on stories260K the mean negative
// log-likelihood of a fixed story changes by less than 1% at Q8_0, and stays close at Q4_K_M.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixtures } from "../../../test/fixtures.ts";
import { meanNLL } from "../../../bench/lib/nll.ts";
import { quantizeFile } from "../src/create/quantize/quantize.ts";
import { parseQuantType } from "../src/create/quantize/types.ts";

let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "corral-quant-nll-"));
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test("stories260K: Q8_0 is within 1% of F32 in mean NLL, Q4_K_M within 3%", async (t) => {
  const f32 = await meanNLL(fixtures.stories260K);
  assert.ok(f32.tokens > 200, `the story is ${f32.tokens} tokens`);
  // A trained model on text of its kind: far better than a uniform guess over 512 tokens (ln 512 ≈ 6.2).
  assert.ok(f32.nll > 0.3 && f32.nll < 3, `F32 mean NLL ${f32.nll}`);
  const results: Record<string, number> = {};
  for (const name of ["Q8_0", "Q4_K_M"]) {
    const out = join(work, `${name}.gguf`);
    await quantizeFile(fixtures.stories260K, out, parseQuantType(name));
    results[name] = (await meanNLL(out)).nll;
  }
  const rel = (x: number): number => (x - f32.nll) / f32.nll;
  t.diagnostic(`mean NLL over ${f32.tokens} tokens: F32 ${f32.nll.toFixed(4)}, Q8_0 ${results["Q8_0"]!.toFixed(4)}, Q4_K_M ${results["Q4_K_M"]!.toFixed(4)}`);
  assert.ok(Math.abs(rel(results["Q8_0"]!)) < 0.01, `Q8_0 is ${(rel(results["Q8_0"]!) * 100).toFixed(2)}% from F32`);
  assert.ok(Math.abs(rel(results["Q4_K_M"]!)) < 0.03, `Q4_K_M is ${(rel(results["Q4_K_M"]!) * 100).toFixed(2)}% from F32`);
});
