// Go's notions of "printable", "space" and its fmt verbs (%v, %#v), reproduced so that what the
// Modelfile parser keeps and what `show` prints match Ollama byte for byte (docs/daemon.md, "Modelfile"
// and "Model operations").

import { compareByCodePoint } from "../gojson.ts";

const PRINTABLE_RE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
export function isGoPrint(ch: string): boolean {
  return PRINTABLE_RE.test(ch);
}

/**
 * unicode.IsSpace for one UTF-16 code unit (every such space is one): \t \n \v \f \r, the space,
 * U+0085, U+00A0 and the Z category. Not U+FEFF, unlike JS's \s.
 */
function isGoSpaceCode(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85) return false;
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** Whether a one-character string is a Go space. */
export function isGoSpace(ch: string): boolean {
  return ch.length === 1 && isGoSpaceCode(ch.charCodeAt(0));
}

// Trimming walks in from the ends one character at a time. A `[…]+$` pattern would be retried
// from every space of every inner run of spaces, quadratic in a long run.

/** Go's strings.TrimSpace. */
export function trimGoSpace(s: string): string {
  let start = 0;
  while (start < s.length && isGoSpaceCode(s.charCodeAt(start))) start++;
  return trimGoSpaceEnd(start === 0 ? s : s.slice(start));
}

export function trimGoSpaceEnd(s: string): string {
  let end = s.length;
  while (end > 0 && isGoSpaceCode(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

/**
 * Go's %v for a float64 (strconv 'g' with the shortest precision): exponent form when the
 * decimal exponent is below -4 or at least 6, with at least two exponent digits
 * (`1e+06`, `1.5e-05`), plain decimals otherwise (`0.7`, `4096`, `123456`).
 */
export function formatGoFloat(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "+Inf";
  if (x === -Infinity) return "-Inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const sign = x < 0 ? "-" : "";
  // toExponential() without an argument yields the shortest round-trip digits.
  const [mantissa = "", expText = "0"] = Math.abs(x).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : "";
    const absExp = Math.abs(exp);
    return `${sign}${digits[0]}${frac}e${exp < 0 ? "-" : "+"}${absExp < 10 ? "0" : ""}${absExp}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const intLen = exp + 1;
  if (digits.length <= intLen) return sign + digits + "0".repeat(intLen - digits.length);
  return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
}

const HEX = "0123456789abcdef";

function hex(n: number, width: number): string {
  let out = "";
  for (let shift = (width - 1) * 4; shift >= 0; shift -= 4) out += HEX[(n >> shift) & 0xf];
  return out;
}

/** Go's strconv.Quote (what %q and %#v print for a string). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") {
      out += "\\" + ch;
      continue;
    }
    if (isGoPrint(ch)) {
      out += ch;
      continue;
    }
    switch (ch) {
      case "\x07": out += "\\a"; continue;
      case "\b": out += "\\b"; continue;
      case "\f": out += "\\f"; continue;
      case "\n": out += "\\n"; continue;
      case "\r": out += "\\r"; continue;
      case "\t": out += "\\t"; continue;
      case "\v": out += "\\v"; continue;
    }
    if (cp < 0x20 || cp === 0x7f) out += "\\x" + hex(cp, 2);
    // A lone surrogate cannot exist in a Go string; the nearest equivalent is the replacement rune.
    else if (cp >= 0xd800 && cp <= 0xdfff) out += "\\ufffd";
    else if (cp < 0x10000) out += "\\u" + hex(cp, 4);
    else out += "\\U" + hex(cp, 8);
  }
  return out + '"';
}

function sortedEntries(obj: object): Array<[string, unknown]> {
  const entries = obj instanceof Map ? [...obj.entries()].map(([k, v]) => [String(k), v] as [string, unknown]) : Object.entries(obj);
  return entries.sort(([a], [b]) => compareByCodePoint(a, b));
}

/**
 * Go's %v for a value decoded from JSON into `any`: numbers are float64, strings print raw,
 * lists as `[a b]`, objects as `map[k:v]` with sorted keys, null as `<nil>`.
 */
export function formatGoValue(v: unknown): string {
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatGoFloat(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Array.isArray(v)) return `[${v.map(formatGoValue).join(" ")}]`;
  if (typeof v === "object") return `map[${sortedEntries(v).map(([k, x]) => `${k}:${formatGoValue(x)}`).join(" ")}]`;
  return String(v);
}

/** Go's %#v for a value decoded from JSON into `any` (strings quoted with Go escapes). */
export function formatGoSyntax(v: unknown): string {
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "string") return goQuote(v);
  if (typeof v === "number") return formatGoFloat(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Array.isArray(v)) return `[]interface {}{${v.map(formatGoSyntax).join(", ")}}`;
  if (typeof v === "object") {
    return `map[string]interface {}{${sortedEntries(v).map(([k, x]) => `${goQuote(k)}:${formatGoSyntax(x)}`).join(", ")}}`;
  }
  return String(v);
}
