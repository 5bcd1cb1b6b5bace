// How many ranges of one blob are fetched at once. Ollama always runs 16: far from the registry,
// that many streams are what it takes to fill the link, but near it (a LAN, the same machine) they
// only compete for the cores and the page cache: on loopback 4 pulled 10-20 % faster than 16.
// So a download starts with 4 streams and tries twice as many, keeping them while they raise the
// throughput by a quarter or more, up to 16. The throughput of a transfer drifts as it goes
// (connections warm up, the page cache fills), so a doubling is judged against the level below
// measured both before and after it, and every level gets a warm-up window before one that counts.
// CORRAL_TRANSFER_CONCURRENCY fixes the number instead.

import { daemonConfig, type DaemonConfig } from "../config.ts";
import type { RisingLimit } from "./parts.ts";

/** How many streams a download starts with (hash-window.mjs maps its window for that many). */
export const START_STREAMS = 4;
const MAX = 16;
/** A doubling is kept when it raises the throughput by at least this factor. */
const GAIN = 1.25;
/** A window lasts at least this long and carries at least this many bytes per stream. */
const WINDOW_MS = 250;
const WINDOW_BYTES_PER_STREAM = 4 << 20;

/** One trial of a doubling: warm-up and measure at the base, at twice it, at the base again. */
type Step = "warm-base" | "base-before" | "warm-double" | "double" | "warm-back" | "base-after";
const NEXT: Record<Step, Step> = {
  "warm-base": "base-before",
  "base-before": "warm-double",
  "warm-double": "double",
  double: "warm-back",
  "warm-back": "base-after",
  "base-after": "warm-base",
};

export class StreamRamp implements RisingLimit {
  private base: number;
  private level: number;
  private settled: boolean;
  private step: Step = "warm-base";
  private readonly rates: Partial<Record<Step, number>> = {};
  private windowStart: number;
  private windowBytes = 0;
  /** Called when the limit rises, so that more streams can start. */
  onRaise: () => void = () => {};

  constructor(
    start: number,
    private readonly max: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.base = this.level = Math.min(start, max);
    this.settled = this.base * 2 > max;
    this.windowStart = now();
  }

  /** Streams that may run now. */
  get limit(): number {
    return this.level;
  }

  /** `n` more bytes arrived (from any stream). */
  wrote(n: number): void {
    if (this.settled) return;
    this.windowBytes += n;
    const elapsed = this.now() - this.windowStart;
    if (elapsed < WINDOW_MS || this.windowBytes < this.level * WINDOW_BYTES_PER_STREAM) return;
    this.rates[this.step] = this.windowBytes / elapsed;
    this.windowStart = this.now();
    this.windowBytes = 0;
    const done = this.step;
    this.step = NEXT[done];
    if (done === "base-before") {
      this.level = this.base * 2;
      this.onRaise();
    } else if (done === "double") {
      this.level = this.base;
    } else if (done === "base-after") {
      const without = (this.rates["base-before"]! + this.rates["base-after"]!) / 2;
      if (this.rates.double! < without * GAIN) {
        this.settled = true;
        return;
      }
      this.base = this.level = this.base * 2;
      this.settled = this.base * 2 > this.max;
      this.onRaise();
    }
  }
}

/** The ramp for one download: fixed when CORRAL_TRANSFER_CONCURRENCY says how many streams. */
export function streamRamp(config: Pick<DaemonConfig, "transferConcurrency"> = daemonConfig()): StreamRamp {
  const n = config.transferConcurrency;
  return n !== undefined ? new StreamRamp(n, n) : new StreamRamp(START_STREAMS, MAX);
}
