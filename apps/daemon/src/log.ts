// The daemon's debug log. With CORRAL_DEBUG (or OLLAMA_DEBUG) set, what the scheduler and runner
// do is written to stderr as JSON lines, {"level":"debug","time","msg",…fields}, the registry's
// log shape; without it nothing is loaded or formatted. The lines `corral serve` prints for the
// person who started it (where it listens, what it pruned) stay plain text.

import type { Logger } from "pino";
import { daemonConfig } from "./config.ts";

let logger: Promise<Logger> | undefined;

async function createLogger(): Promise<Logger> {
  // Loaded on first use: a daemon without the debug log does not pay for it at start-up.
  const { default: pino } = await import("pino");
  return pino(
    { level: "debug", base: undefined, timestamp: false, formatters: { level: (label) => ({ level: label }) } },
    // Written asynchronously: a terminal or pipe that is slow to read must not hold up generation.
    pino.destination({ fd: 2, sync: false }),
  );
}

/** Logs one debug event when the debug log is on; lines keep the order of the calls. */
export function debugLog(msg: string, fields: Record<string, unknown>): void {
  if (!daemonConfig().debug) return;
  const entry = { time: new Date().toISOString(), ...fields };
  void (logger ??= createLogger()).then((l) => l.debug(entry, msg));
}
