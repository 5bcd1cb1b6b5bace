// keep_alive values (docs/daemon.md, "Generate, chat and embed" and "Keep-alive"): a JSON number is seconds, a string is a Go duration.
import { StatusError } from "../errors.ts";

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go duration ("5m", "1h30m", "-1m", "300ms") into milliseconds. */
export function parseGoDuration(s: string): number {
  const text = s.trim();
  if (text === "0") return 0;
  const m = /^([+-])?((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text);
  if (!m) {
    if (/^[+-]?\d+(\.\d+)?$/.test(text)) throw new StatusError(400, `time: missing unit in duration ${JSON.stringify(text)}`);
    throw new StatusError(400, `time: invalid duration ${JSON.stringify(text)}`);
  }
  let total = 0;
  for (const part of text.replace(/^[+-]/, "").matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * UNITS[part[2]!]!;
  }
  return m[1] === "-" ? -total : total;
}

/** Milliseconds; negative means forever; undefined means "use the default". */
export function parseKeepAlive(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "number") return v < 0 ? -1 : v * 1000;
  if (typeof v === "string") {
    const ms = parseGoDuration(v);
    return ms < 0 ? -1 : ms;
  }
  throw new StatusError(400, "keep_alive must be a number of seconds or a duration string like \"5m\"");
}
