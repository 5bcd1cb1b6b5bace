// Notices a transfer that stops moving without closing: a server that holds a connection open and
// sends nothing, or a network that drops packets silently. TCP alone would wait for hours. A part
// that moves no byte for the stall timeout (Ollama's 30 s; CORRAL_TRANSFER_STALL_TIMEOUT) is cut
// off, and the retry policy gives it another attempt from where it got to.

import { daemonConfig } from "../config.ts";
import { TransportError } from "./registry-errors.ts";

export class StallError extends TransportError {
  constructor(what: string, ms: number) {
    super(`${what} stalled: no bytes for ${ms / 1000} s`);
    this.name = "StallError";
  }
}

/**
 * Watches one attempt at a part: `signal` aborts when the caller's does or when no `moved()` was
 * heard for the stall timeout; `failure(e)` is the error to raise for what the attempt threw.
 */
export class StallWatchdog {
  /** For the attempt's requests. */
  readonly signal: AbortSignal;
  private readonly stalled = new AbortController();
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly what: string,
    private readonly outer?: AbortSignal,
    private readonly ms = daemonConfig().transferStallMs,
  ) {
    this.signal = outer ? AbortSignal.any([outer, this.stalled.signal]) : this.stalled.signal;
    this.arm(ms);
  }

  /** Bytes moved. Cheap: the timer is not touched. */
  moved(): void {
    this.last = performance.now();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The StallError when a stall cut the attempt off (the abort shows as an AbortError), else `e`. */
  failure(e: unknown): unknown {
    return this.stalled.signal.aborted && !this.outer?.aborted ? this.stalled.signal.reason : e;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
    // A watchdog alone must not keep the process alive.
    this.timer.unref();
  }

  private check(): void {
    if (!this.timer) return;
    const idle = performance.now() - this.last;
    if (idle < this.ms) return this.arm(this.ms - idle);
    // Bytes that arrived while this process was not running (a busy machine, a paused VM) wait in
    // the poll phase, which runs after timers: look once more after it before calling a stall.
    setImmediate(() => {
      if (!this.timer) return;
      const again = performance.now() - this.last;
      if (again < this.ms) return this.arm(this.ms - again);
      this.timer = undefined;
      this.stalled.abort(new StallError(this.what, this.ms));
    });
  }
}
