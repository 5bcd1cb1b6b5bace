// The sampler the log-probability path chooses tokens with (runner/token-sampler.ts): llama.cpp's
// order and rules for penalties, greedy, top-k, top-p, min-p and temperature, and a seeded draw.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Token } from "node-llama-cpp";
import { TokenSampler, type Candidate, type SamplingSettings } from "../src/runner/token-sampler.ts";

const base: SamplingSettings = { temperature: 1, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, seed: 1 };

const c = (token: number, logit: number): Candidate => ({ token: token as Token, logit });
const tokens = (...ids: number[]): Token[] => ids as Token[];
/** Candidates whose softmax is `probs` (token ids 0, 1, 2, …). */
const fromProbs = (probs: number[]): Candidate[] => probs.map((p, token) => c(token, Math.log(p)));

/** How often each token is drawn in `n` draws. */
function frequencies(sampler: TokenSampler, candidates: Candidate[], n: number): number[] {
  const counts = candidates.map(() => 0);
  for (let i = 0; i < n; i++) counts[sampler.choose(candidates, [])]!++;
  return counts.map((c) => c / n);
}

test("greedy: the highest logit after the repeat penalty, the lower id on a tie", () => {
  const greedy = new TokenSampler({ ...base, temperature: 0, repeatPenalty: 2 });
  const candidates = [c(5, 4), c(9, 3), c(3, 3)];
  assert.equal(greedy.choose(candidates, []), 5);
  // Token 5 was just written: 4 / 2 = 2 drops it below the others, and of the tied two the lower id wins.
  assert.equal(greedy.choose(candidates, tokens(5)), 3);
  assert.equal(greedy.choose([c(5, 4), c(3, 1)], tokens(5)), 5);
  // A negative logit is multiplied: -1 × 2 = -2 loses to -1.5.
  assert.equal(greedy.choose([c(1, -1), c(2, -1.5)], tokens(1)), 2);
  assert.equal(greedy.candidatesNeeded(), 1);
});

test("frequency and presence penalties subtract per occurrence and once", () => {
  const s = new TokenSampler({ ...base, temperature: 0, frequencyPenalty: 0.5, presencePenalty: 0.25 });
  // Token 1: 3 - 2 × 0.5 - 0.25 = 1.75 < 2.
  assert.equal(s.choose([c(1, 3), c(2, 2)], tokens(1, 1)), 2);
  assert.equal(s.choose([c(1, 3), c(2, 2)], tokens(1)), 1);
});

test("draws follow the tempered distribution, and a seed repeats them", () => {
  const candidates = fromProbs([0.75, 0.25]);
  const freq = frequencies(new TokenSampler(base), candidates, 4000);
  assert.ok(Math.abs(freq[0]! - 0.75) < 0.04, `${freq}`);
  // Temperature 0.5 squares the odds: 9 : 1.
  const cold = frequencies(new TokenSampler({ ...base, temperature: 0.5 }), candidates, 4000);
  assert.ok(Math.abs(cold[0]! - 0.9) < 0.03, `${cold}`);
  const a = new TokenSampler({ ...base, seed: 42 });
  const b = new TokenSampler({ ...base, seed: 42 });
  const seqA = Array.from({ length: 50 }, () => a.choose(candidates, []));
  const seqB = Array.from({ length: 50 }, () => b.choose(candidates, []));
  assert.deepEqual(seqA, seqB);
  assert.equal(new Set(seqA).size, 2, "successive draws differ");
});

test("top-k, top-p and min-p keep what llama.cpp keeps", () => {
  const candidates = fromProbs([0.5, 0.3, 0.2]);
  assert.deepEqual(frequencies(new TokenSampler({ ...base, topK: 1 }), candidates, 200), tokens(1, 0, 0));
  // top_p 0.7: 0.5 then 0.8 ≥ 0.7, so the first two.
  const topP = frequencies(new TokenSampler({ ...base, topP: 0.7 }), candidates, 2000);
  assert.equal(topP[2], 0);
  assert.ok(topP[1]! > 0.3, `${topP}`);
  // min_p 0.5: p ≥ 0.25 stays.
  const minP = frequencies(new TokenSampler({ ...base, minP: 0.5 }), candidates, 2000);
  assert.equal(minP[2], 0);
  assert.ok(minP[1]! > 0.3, `${minP}`);
  assert.equal(new TokenSampler({ ...base, topK: 40 }).candidatesNeeded(), 40);
  assert.equal(new TokenSampler(base).candidatesNeeded(), undefined);
});
