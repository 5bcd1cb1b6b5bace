// Structured logs: one JSON object per line on stderr ({"level","time",…fields,"msg"}), written by
// pino.
//
// Lines go to stderr through an asynchronous destination rather than process.stderr, which is
// synchronous on pipes: a log collector that stops reading must not stall request handling. When
// more than MAX_PENDING bytes are waiting, new lines are dropped and counted, and the count is
// logged once the output drains.

import pino, { type DestinationStream } from "pino";
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

const MAX_PENDING = 4 << 20;

type Destination = ReturnType<typeof pino.destination>;

let stderr: { dest: Destination; dropped: number } | undefined;

/** One asynchronous, bounded stderr destination per process, shared by every logger. */
function stderrDestination(): NonNullable<typeof stderr> {
  if (stderr) return stderr;
  // minLength 1 rather than 0: with 0, SonicBoom's flush() answers at once instead of after the
  // write in flight, and shutdown's last lines could be lost.
  const dest = pino.destination({ fd: 2, sync: false, minLength: 1, maxLength: MAX_PENDING });
  const state = { dest, dropped: 0 };
  // A closed stderr (EPIPE) loses the logs, not the registry.
  dest.on("error", () => {});
  dest.on("drop", () => {
    state.dropped++;
  });
  dest.on("drain", () => {
    if (state.dropped === 0) return;
    const line = JSON.stringify({ level: "warn", time: new Date().toISOString(), dropped: state.dropped, msg: "log lines dropped: the log output is not being read fast enough" });
    state.dropped = 0;
    dest.write(line + "\n");
  });
  stderr = state;
  return state;
}

/**
 * A logger writing JSON lines at or above `level`. `sink` receives each line without its newline
 * (tests, embedding); by default lines go to stderr.
 */
export function createLogger(level: LogLevel = "info", sink?: (line: string) => void): Logger {
  const dest: DestinationStream | Destination = sink
    ? { write: (line: string) => sink(line.endsWith("\n") ? line.slice(0, -1) : line) }
    : stderrDestination().dest;
  const log = pino(
    {
      level,
      base: undefined,
      // An ISO time, as the rest of the project's logs and the access log write it.
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  return {
    level,
    enabled: (lvl) => log.isLevelEnabled(lvl),
    debug: (msg, fields) => log.debug(fields ?? {}, msg),
    info: (msg, fields) => log.info(fields ?? {}, msg),
    warn: (msg, fields) => log.warn(fields ?? {}, msg),
    error: (msg, fields) => log.error(fields ?? {}, msg),
    flush: () =>
      sink
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            // The callback's error is fsync's on a pipe or terminal (EINVAL): the lines are written.
            (dest as Destination).flush(() => resolve());
          }),
  };
}

/** An error as log fields: message, code and stack. */
export function errorFields(err: unknown): LogFields {
  const e = err as { message?: string; code?: string; stack?: string };
  return { error: e?.message ?? String(err), ...(e?.code ? { code: e.code } : {}), ...(e?.stack ? { stack: e.stack } : {}) };
}
