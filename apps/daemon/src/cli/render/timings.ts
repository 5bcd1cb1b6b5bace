// The timings `corral run --verbose` prints after each answer (docs/daemon.md, "CLI"), in
// Ollama's wording and with Go's Duration formatting (`1.234567s`, `812.5ms`, `1m2.5s`).

import { goFixed } from "@corral/shared/format";

/** The metrics on an answer's final chunk (docs/daemon.md, "Generate, chat and embed"); durations are nanoseconds. */
export interface AnswerMetrics {
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
  prompt_eval_duration?: number;
  eval_count?: number;
  eval_duration?: number;
}

const NS_PER_US = 1e3;
const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;

/** `digits` decimals of the fraction `v / 10^digits`, trailing zeros dropped, with its point. */
function fraction(v: number, digits: number): string {
  const text = String(v % 10 ** digits).padStart(digits, "0").replace(/0+$/, "");
  return text ? `.${text}` : "";
}

/** Go's time.Duration.String for a whole number of nanoseconds. */
export function goDurationString(ns: number): string {
  ns = Math.trunc(ns);
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  const u = Math.abs(ns);
  if (u < NS_PER_US) return `${sign}${u}ns`;
  if (u < NS_PER_MS) return `${sign}${Math.trunc(u / NS_PER_US)}${fraction(u, 3)}µs`;
  if (u < NS_PER_S) return `${sign}${Math.trunc(u / NS_PER_MS)}${fraction(u, 6)}ms`;
  const seconds = Math.trunc(u / NS_PER_S);
  const s = `${seconds % 60}${fraction(u, 9)}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes === 0) return sign + s;
  const hours = Math.trunc(minutes / 60);
  if (hours === 0) return `${sign}${minutes}m${s}`;
  return `${sign}${hours}h${minutes % 60}m${s}`;
}

function rate(count: number, ns: number): string {
  return `${goFixed(count / (ns / NS_PER_S), 2)} tokens/s`;
}

/** The lines of Ollama's timing summary; a metric that is zero or absent is left out. */
export function formatTimings(m: AnswerMetrics): string {
  let out = "";
  const total = m.total_duration ?? 0;
  const load = m.load_duration ?? 0;
  const promptCount = m.prompt_eval_count ?? 0;
  const promptNs = m.prompt_eval_duration ?? 0;
  const evalCount = m.eval_count ?? 0;
  const evalNs = m.eval_duration ?? 0;
  if (total > 0) out += `total duration:       ${goDurationString(total)}\n`;
  if (load > 0) out += `load duration:        ${goDurationString(load)}\n`;
  if (promptCount > 0) out += `prompt eval count:    ${promptCount} token(s)\n`;
  if (promptNs > 0) {
    out += `prompt eval duration: ${goDurationString(promptNs)}\n`;
    out += `prompt eval rate:     ${rate(promptCount, promptNs)}\n`;
  }
  if (evalCount > 0) out += `eval count:           ${evalCount} token(s)\n`;
  if (evalNs > 0) {
    out += `eval duration:        ${goDurationString(evalNs)}\n`;
    out += `eval rate:            ${rate(evalCount, evalNs)}\n`;
  }
  return out;
}
