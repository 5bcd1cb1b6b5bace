// Human-readable numbers, sizes, times and rates exactly as Ollama's CLI prints them
// (docs/daemon.md, "CLI"). Go's `%.Nf` rounds an exact binary tie to even while
// JavaScript's toFixed rounds it up, so the fixed-point formatting goes through goFixed.

const THOUSAND = 1e3;
const MILLION = 1e6;
const BILLION = 1e9;

/**
 * A parameter count: `8.0B`, `70B`, `22.71M`, `135K`, `0`.
 * Billions get one decimal unless whole, millions two, thousands none.
 */
export function humanNumber(n: number): string {
  if (!Number.isFinite(n) || n < 0) return String(n);
  n = Math.trunc(n);
  if (n >= BILLION) {
    const v = n / BILLION;
    return Number.isInteger(v) ? `${v}B` : `${goFixed(v, 1)}B`;
  }
  if (n >= MILLION) {
    const v = n / MILLION;
    return Number.isInteger(v) ? `${v}M` : `${goFixed(v, 2)}M`;
  }
  if (n >= THOUSAND) return `${goFixed(n / THOUSAND, 0)}K`;
  return String(n);
}

const BYTE_UNITS: ReadonlyArray<readonly [number, string]> = [
  [1e12, "TB"],
  [1e9, "GB"],
  [1e6, "MB"],
  [1e3, "KB"],
];

/**
 * A byte count in decimal units: `13 GB`, `4.7 GB`, `2.0 GB` (2.019e9), `2 GB`, `512 B`.
 * At 10 units and above only the integer part is printed; below, one decimal when there is a fraction.
 */
export function humanBytes(n: number): string {
  if (!Number.isFinite(n)) return `${n} B`;
  n = Math.trunc(n);
  for (const [size, unit] of BYTE_UNITS) {
    if (n < size) continue;
    const v = n / size;
    if (v >= 10) return `${Math.trunc(v)} ${unit}`;
    if (v !== Math.trunc(v)) return `${goFixed(v, 1)} ${unit}`;
    return `${v} ${unit}`;
  }
  return `${n} B`;
}

/** A transfer rate: `12 MB/s`. */
export function humanRate(bytesPerSecond: number): string {
  return `${humanBytes(Math.max(0, bytesPerSecond))}/s`;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * A remaining time as the progress bars print it, at most two units: `3s`, `1m2s`, `2h5m`,
 * `99h+` from 100 hours on. Below an hour it is Go's Duration string of the time rounded to the second.
 */
export function humanDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return "0s";
  if (ms >= 100 * HOUR) return "99h+";
  if (ms >= HOUR) return `${Math.floor(ms / HOUR)}h${Math.floor(ms / MINUTE) % 60}m`;
  // Go rounds half away from zero; the value is positive so Math.round agrees.
  const total = Math.round(ms / SECOND);
  const h = Math.floor(total / 3600);
  const m = Math.floor(total / 60) % 60;
  const s = total % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * Go's zero time (0001-01-01T00:00:00Z) in epoch milliseconds: how the API writes "never".
 * Date.UTC maps years below 100 to 19xx, hence setUTCFullYear.
 */
const GO_ZERO_TIME = ((): number => {
  const d = new Date(0);
  d.setUTCFullYear(1, 0, 1);
  d.setUTCHours(0, 0, 0, 0);
  return d.getTime();
})();

/**
 * A time relative to `now`: `Never` for the zero time (epoch 0, Go's zero time or an invalid date),
 * `Forever` beyond 20 years ahead, otherwise `<d> from now` / `<d> ago`.
 */
export function humanTime(date: Date, now: Date = new Date()): string {
  const t = date.getTime();
  if (Number.isNaN(t) || t === 0 || t === GO_ZERO_TIME) return "Never";
  const delta = now.getTime() - t;
  // Go: int(delta.Hours())/24/365 < -20, integer division truncating toward zero.
  if (Math.trunc(Math.trunc(delta / HOUR) / 24 / 365) < -20) return "Forever";
  if (delta < 0) return `${relativeDuration(-delta)} from now`;
  return `${relativeDuration(delta)} ago`;
}

/** The `<d>` of humanTime: the wording and thresholds of Ollama's format.humanDuration. */
function relativeDuration(ms: number): string {
  const seconds = Math.trunc(ms / SECOND);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;

  const minutes = Math.trunc(ms / MINUTE);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;

  const hours = Math.round(ms / HOUR);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(hours / 24 / 365)} years`;
}

/**
 * Go's `%.<digits>f` for a non-negative value. A value exactly halfway between two outputs is
 * k/2^(digits+1) for an odd k (the only halves a double can hold exactly); Go rounds those to the
 * even neighbour, toFixed to the larger one.
 */
export function goFixed(v: number, digits: number): string {
  const halves = v * 2 ** (digits + 1);
  if (Number.isInteger(halves) && halves % 2 === 1) {
    // v·10^digits is then an exact integer plus one half.
    let n = Math.floor(v * 10 ** digits);
    if (n % 2 === 1) n += 1;
    return (n / 10 ** digits).toFixed(digits);
  }
  return v.toFixed(digits);
}
