/**
 * Go's encoding/json Marshal, for the `json` template function and for data
 * that prints itself as JSON: compact, `<` `>` `&` U+2028 U+2029 escaped, map
 * keys sorted. Plain objects keep insertion order (they stand for Go structs);
 * `Map`s are Go maps. `toJSON()` is honoured as in JSON.stringify, and
 * Uint8Array encodes as base64 like Go's []byte.
 */
import { compareStrings, isNil } from "./values.ts";

const HEX = "0123456789abcdef";

export function quoteJSON(s: string): string {
  let out = '"';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | null = null;
    if (c < 0x20) {
      esc = c === 10 ? "\\n" : c === 13 ? "\\r" : c === 9 ? "\\t" : c === 8 ? "\\b" : c === 12 ? "\\f" : "\\u00" + HEX[c >> 4]! + HEX[c & 15]!;
    } else if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = "\\\\";
    else if (c === 0x3c) esc = "\\u003c";
    else if (c === 0x3e) esc = "\\u003e";
    else if (c === 0x26) esc = "\\u0026";
    else if (c === 0x2028) esc = "\\u2028";
    else if (c === 0x2029) esc = "\\u2029";
    else if (c >= 0xd800 && c < 0xe000) {
      const lead = c < 0xdc00;
      const n = s.charCodeAt(i + 1);
      if (lead && n >= 0xdc00 && n < 0xe000) {
        i++;
        continue;
      }
      esc = "\\ufffd";
    }
    if (esc !== null) {
      out += s.slice(last, i) + esc;
      last = i + 1;
    }
  }
  return out + s.slice(last) + '"';
}

class JSONError extends Error {}

function encode(v: unknown, seen: Set<object>): string | undefined {
  if (isNil(v)) return "null";
  if (typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    return encode((v as { toJSON: () => unknown }).toJSON(), seen);
  }
  switch (typeof v) {
    case "boolean":
      return String(v);
    case "number":
      if (!Number.isFinite(v)) throw new JSONError(`json: unsupported value: ${v}`);
      // JavaScript's shortest form switches to exponents at the same bounds as Go's (1e-6, 1e21).
      return String(v);
    case "bigint":
      return v.toString();
    case "string":
      return quoteJSON(v);
    case "function":
    case "symbol":
      return undefined;
  }
  const obj = v as object;
  if (seen.has(obj)) throw new JSONError("json: unsupported value: encountered a cycle");
  seen.add(obj);
  try {
    if (obj instanceof Uint8Array) return '"' + Buffer.from(obj).toString("base64") + '"';
    if (Array.isArray(obj)) return "[" + obj.map((x) => encode(x, seen) ?? "null").join(",") + "]";
    let entries: [string, unknown][];
    if (obj instanceof Map) {
      entries = [...(obj as Map<unknown, unknown>).entries()].map(([k, x]): [string, unknown] => [String(k), x]);
      entries.sort((a, b) => compareStrings(a[0], b[0]));
    } else {
      entries = Object.entries(obj);
    }
    const parts: string[] = [];
    for (const [k, x] of entries) {
      const enc = encode(x, seen);
      if (enc === undefined || x === undefined) continue;
      parts.push(quoteJSON(k) + ":" + enc);
    }
    return "{" + parts.join(",") + "}";
  } finally {
    seen.delete(obj);
  }
}

/** JSON text of a value the way Go's json.Marshal writes it; throws on NaN, Infinity, cycles and bare functions. */
export function goJSON(v: unknown): string {
  const out = encode(v, new Set());
  if (out === undefined) throw new JSONError(`json: unsupported type: ${typeof v}`);
  return out;
}
