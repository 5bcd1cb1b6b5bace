// Choosing the next token from the model's raw logits as llama.cpp's sampler chain (as
// node-llama-cpp builds it) chooses: repeat penalties, then the highest logit at temperature 0,
// else top-k, top-p, min-p, temperature and a weighted draw. The log-probability path
// (runner/logprob-generation.ts) needs the raw logits, which llama.cpp's own chain rewrites while it
// chooses, so it reads them unsampled and chooses here (docs/daemon.md, "Log-probabilities").

import { randomInt } from "node:crypto";
import type { Token } from "node-llama-cpp";

export interface Candidate {
  token: Token;
  logit: number;
}

export interface SamplingSettings {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  /** The draw's seed; undefined for a random one. */
  seed: number | undefined;
}

const f32 = Math.fround;

/** Highest logit first; equal logits by token id, as llama.cpp's greedy pick keeps the first in vocabulary order. */
export function byLogit(a: Candidate, b: Candidate): number {
  return b.logit - a.logit || a.token - b.token;
}

export class TokenSampler {
  /** State of the draw's generator (mulberry32: small, seedable, uniform enough for a weighted draw). */
  private state: number;

  constructor(private readonly settings: SamplingSettings) {
    this.state = (settings.seed ?? randomInt(2 ** 32 - 1)) >>> 0;
  }

  /**
   * How many of the highest raw logits choosing can look at, besides those of the penalized tokens;
   * undefined when it needs all of them. A penalty moves only the tokens it names, so the best k
   * after penalties are among the best k + (tokens penalized) before them.
   */
  candidatesNeeded(): number | undefined {
    const { temperature, topK } = this.settings;
    if (temperature <= 0) return 1;
    return topK > 0 ? topK : undefined;
  }

  /**
   * The token to write next, from `candidates` (raw logits; every token of `recent` among them)
   * with `recent` the generated tokens the repeat penalties look at.
   */
  choose(candidates: readonly Candidate[], recent: readonly Token[]): Token {
    let cur = this.penalize(candidates, recent).sort(byLogit);
    const { temperature, topK, topP, minP } = this.settings;
    if (temperature <= 0) return cur[0]!.token;
    if (topK > 0) cur = cur.slice(0, topK);
    if (topP < 1) cur = cur.slice(0, keptByTopP(cur, topP));
    if (minP > 0) {
      const floor = f32(cur[0]!.logit + f32(Math.log(minP)));
      cur = cur.filter((c, i) => i === 0 || c.logit >= floor);
    }
    const scaled = cur.map((c) => f32(c.logit / f32(temperature)));
    const weights = scaled.map((l) => Math.exp(l - scaled[0]!));
    const target = weights.reduce((a, b) => a + b, 0) * this.uniform();
    let run = 0;
    for (const [i, w] of weights.entries()) {
      run += w;
      if (run >= target) return cur[i]!.token;
    }
    return cur[cur.length - 1]!.token;
  }

  /** llama.cpp's penalties: repeat (divide a positive logit, multiply a negative), frequency and presence. */
  private penalize(candidates: readonly Candidate[], recent: readonly Token[]): Candidate[] {
    const { repeatPenalty, frequencyPenalty, presencePenalty } = this.settings;
    if (recent.length === 0) return [...candidates];
    const counts = new Map<Token, number>();
    for (const t of recent) counts.set(t, (counts.get(t) ?? 0) + 1);
    return candidates.map((c) => {
      const count = counts.get(c.token);
      if (count === undefined) return c;
      let logit = c.logit <= 0 ? f32(c.logit * f32(repeatPenalty)) : f32(c.logit / f32(repeatPenalty));
      logit = f32(logit - f32(f32(count * f32(frequencyPenalty)) + f32(presencePenalty)));
      return { token: c.token, logit };
    });
  }

  private uniform(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
}

/** How many of `sorted` top-p keeps: the fewest whose probabilities add up to `p`, at least one. */
function keptByTopP(sorted: readonly Candidate[], p: number): number {
  const weights = sorted.map((c) => Math.exp(c.logit - sorted[0]!.logit));
  const total = weights.reduce((a, b) => a + b, 0);
  let cum = 0;
  for (const [i, w] of weights.entries()) {
    cum += w / total;
    if (cum >= p) return i + 1;
  }
  return sorted.length;
}
