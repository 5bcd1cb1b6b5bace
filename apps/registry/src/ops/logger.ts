// Structured logs: one JSON object per line on stderr ({"time","level","msg",…fields}).
//
// Lines are batched and written with asynchronous fs.write calls rather than process.stderr, which
// is synchronous on pipes: a log collector that stops reading must not stall request handling. When
// more than MAX_PENDING bytes are waiting, new lines are dropped and counted instead.

import { write, writeSync } from "node:fs";
import type { LogLevel } from "../config.ts";

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Resolves once every line logged so far has been written. */
  flush(): Promise<void>;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const MAX_PENDING = 4 << 20;

/** Batches lines to a file descriptor; at most one write is outstanding at a time. */
class FdSink {
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing = false;
  private dropped = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly fd: number) {}

  push(line: string): void {
    if (this.pendingBytes > MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!this.writing) {
      this.writing = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    if (this.dropped > 0) {
      this.pending.push(JSON.stringify({ time: new Date().toISOString(), level: "warn", msg: "log lines dropped: the log output is not being read fast enough", dropped: this.dropped }) + "\n");
      this.dropped = 0;
    }
    if (this.pending.length === 0) {
      this.writing = false;
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    const buf = Buffer.from(this.pending.join(""));
    this.pending = [];
    this.pendingBytes = 0;
    this.writeAll(buf, 0);
  }

  private writeAll(buf: Buffer, from: number): void {
    write(this.fd, buf, from, buf.length - from, null, (err, n) => {
      // EAGAIN on a non-blocking descriptor: try the rest again; any other error loses the batch.
      if (err && err.code !== "EAGAIN") return this.drain();
      const next = from + (err ? 0 : n);
      if (next < buf.length) setImmediate(() => this.writeAll(buf, next));
      else this.drain();
    });
  }

  flush(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** For the last words of a process that is about to exit. */
  flushSync(): void {
    if (this.writing) return;
    const text = this.pending.join("");
    this.pending = [];
    if (text) writeSync(this.fd, text);
  }
}

let stderrSink: FdSink | undefined;

/**
 * A logger writing JSON lines at or above `level`. `sink` receives each line without its newline
 * (tests, embedding); by default lines go to stderr.
 */
export function createLogger(level: LogLevel = "info", sink?: (line: string) => void): Logger {
  const out = sink ? undefined : (stderrSink ??= new FdSink(2));
  const min = RANK[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[lvl] < min) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields });
    if (sink) sink(line);
    else out!.push(line + "\n");
  };
  return {
    level,
    enabled: (lvl) => RANK[lvl] >= min,
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    flush: () => out?.flush() ?? Promise.resolve(),
  };
}

/** Writes whatever is still queued for stderr, synchronously (an exit handler's last chance). */
export function flushLogsSync(): void {
  stderrSink?.flushSync();
}

/** An error as log fields: message, code and stack. */
export function errorFields(err: unknown): LogFields {
  const e = err as { message?: string; code?: string; stack?: string };
  return { error: e?.message ?? String(err), ...(e?.code ? { code: e.code } : {}), ...(e?.stack ? { stack: e.stack } : {}) };
}
