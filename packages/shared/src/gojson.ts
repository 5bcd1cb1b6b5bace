// JSON text byte-identical to Go's encoding/json, so that blobs we write (params, messages,
// config, manifests) hash to the same digests Ollama produces (docs/protocol.md, "Byte-exact encodings").
// Also the float32 "shortest decimal" that Ollama's CLI produces for float parameters.

export interface GoJSONOptions {
  /** Sort object keys by byte order, recursively (Go map order). Default: insertion order (Go struct order). */
  sortKeys?: boolean;
  /** Append "\n", as Go's json.Encoder does. */
  newline?: boolean;
}

/** Encodes `value` the way Go's encoding/json would. Throws TypeError for values Go cannot encode. */
export function goJSON(value: unknown, opts: GoJSONOptions = {}): string {
  const out = encode(value, opts.sortKeys === true, new Set(), "");
  if (out === undefined) throw new TypeError("goJSON: the top-level value is undefined");
  return opts.newline === true ? out + "\n" : out;
}

/** Byte order of the UTF-8 encodings, which is code point order (Go sorts map keys this way). */
export function compareByCodePoint(a: string, b: string): number {
  if (a === b) return 0;
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0) ?? 0;
    const cy = y.value.codePointAt(0) ?? 0;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

// Characters Go escapes beyond JSON's minimum: HTML-sensitive ones and the JS line separators.
// Lone surrogates stand for invalid UTF-8, which Go writes as \ufffd.
const ESCAPE_RE = /["\\\u0000-\u001f<>&\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};

function escapeChar(ch: string): string {
  const short = SHORT_ESCAPES[ch];
  if (short !== undefined) return short;
  const cp = ch.charCodeAt(0);
  if (cp >= 0xd800 && cp <= 0xdfff) return "\\ufffd";
  return "\\u" + cp.toString(16).padStart(4, "0");
}

export function goJSONString(s: string): string {
  ESCAPE_RE.lastIndex = 0;
  if (!ESCAPE_RE.test(s)) return `"${s}"`;
  ESCAPE_RE.lastIndex = 0;
  return `"${s.replace(ESCAPE_RE, escapeChar)}"`;
}

function encodeNumber(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`goJSON: unsupported value: ${n} (Go's encoding/json rejects NaN and infinities)`);
  return String(n);
}

function encode(value: unknown, sortKeys: boolean, seen: Set<object>, key: string): string | undefined {
  if (value === null) return "null";
  switch (typeof value) {
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
    case "string":
      return goJSONString(value);
    case "number":
      return encodeNumber(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "true" : "false";
  }
  const obj = value as object;
  if (obj instanceof Uint8Array) return `"${Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString("base64")}"`;
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return encode(toJSON.call(obj, key), sortKeys, seen, key);
  if (seen.has(obj)) throw new TypeError("goJSON: cannot encode a cyclic structure");
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      const parts = obj.map((item, i) => encode(item, sortKeys, seen, String(i)) ?? "null");
      return `[${parts.join(",")}]`;
    }
    // A Map models a Go map, whose keys are always sorted.
    const isMap = obj instanceof Map;
    let entries: Array<[string, unknown]> = isMap
      ? [...(obj as Map<unknown, unknown>).entries()].map(([k, v]) => [String(k), v] as [string, unknown])
      : Object.entries(obj);
    if (sortKeys || isMap) entries = entries.sort(([a], [b]) => compareByCodePoint(a, b));
    const parts: string[] = [];
    for (const [k, v] of entries) {
      const encoded = encode(v, sortKeys, seen, k);
      if (encoded !== undefined) parts.push(`${goJSONString(k)}:${encoded}`);
    }
    return `{${parts.join(",")}}`;
  } finally {
    seen.delete(obj);
  }
}

// ---------------------------------------------------------------------------------------------
// float32

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

interface Decimal {
  digits: bigint; // > 0
  exp10: number; // value = digits * 10^exp10
}

function pow(base: bigint, n: number): bigint {
  return base ** BigInt(n);
}

/** Sign of (d.digits * 10^d.exp10) - (n * 2^exp2), exactly. */
function compareDecimalBinary(d: Decimal, n: bigint, exp2: number): number {
  let a = d.digits;
  let b = n;
  if (d.exp10 >= 0) a *= pow(10n, d.exp10);
  else b *= pow(10n, -d.exp10);
  if (exp2 >= 0) b *= pow(2n, exp2);
  else a *= pow(2n, -exp2);
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Float32Parts {
  sig: bigint; // value = sig * 2^exp2
  exp2: number;
  /** Just above a power of two the gap below is half the gap above. */
  lopsided: boolean;
}

function float32Parts(f: number): Float32Parts {
  f32[0] = f;
  const bits = u32[0] ?? 0;
  const expBits = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  return {
    sig: BigInt(expBits === 0 ? mant : mant | 0x800000),
    exp2: expBits === 0 ? -149 : expBits - 150,
    lopsided: mant === 0 && expBits > 1,
  };
}

/** True when the decimal rounds (to nearest, ties to even) to the positive finite float32 `f`. */
function roundsToFloat32(d: Decimal, f: number): boolean {
  const { sig, exp2, lopsided } = float32Parts(f);
  const even = (sig & 1n) === 0n;
  const hi = compareDecimalBinary(d, 2n * sig + 1n, exp2 - 1);
  const lo = lopsided ? compareDecimalBinary(d, 4n * sig - 1n, exp2 - 2) : compareDecimalBinary(d, 2n * sig - 1n, exp2 - 1);
  return (hi < 0 || (hi === 0 && even)) && (lo > 0 || (lo === 0 && even));
}

/** Parses an unsigned decimal literal (`12`, `1.5`, `.5`, `5.`, `1e-7`, `1.2e+21`). */
function parseDecimal(text: string): Decimal | undefined {
  const m = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (m === null) return undefined;
  const intPart = m[1] ?? "";
  const fracPart = m[2] ?? "";
  if (intPart === "" && fracPart === "") return undefined;
  const all = (intPart + fracPart).replace(/^0+/, "");
  if (all === "") return { digits: 0n, exp10: 0 };
  const exp = Number(m[3] ?? "0");
  return { digits: BigInt(all), exp10: exp - fracPart.length };
}

function nextFloat32(f: number, dir: 1 | -1): number {
  f32[0] = f;
  u32[0] = (u32[0] ?? 0) + dir;
  return f32[0] ?? 0;
}

function shortestFloat32Decimal(f: number): Decimal {
  for (let p = 1; p <= 9; p++) {
    const d = parseDecimal(f.toPrecision(p));
    if (d === undefined) break;
    // The p-digit decimal on the other side of f.
    const { sig, exp2 } = float32Parts(f);
    const alt: Decimal = { digits: d.digits + (compareDecimalBinary(d, sig, exp2) < 0 ? 1n : -1n), exp10: d.exp10 };
    const altOk = alt.digits > 0n && roundsToFloat32(alt, f);
    if (roundsToFloat32(d, f)) {
      // toPrecision breaks an exact tie upwards; Go rounds it to the even digit.
      const tie = altOk && compareDecimalBinary({ digits: d.digits + alt.digits, exp10: d.exp10 }, sig, exp2 + 1) === 0;
      return tie && d.digits % 2n === 1n ? alt : d;
    }
    // Next to a power of two the interval is lopsided and the farther candidate can still fit.
    if (altOk) return alt;
  }
  return parseDecimal(f.toPrecision(9)) as Decimal;
}

/**
 * The JS number whose String() is the shortest decimal that round-trips through float32, i.e.
 * what Go prints for float32(x). NaN, infinities and values that overflow float32 come back as
 * NaN/±Infinity.
 */
export function toFloat32Number(x: number): number {
  const f = Math.fround(x);
  if (!Number.isFinite(f) || f === 0) return f;
  const d = shortestFloat32Decimal(Math.abs(f));
  const abs = Number(`${d.digits}e${d.exp10}`);
  return f < 0 ? -abs : abs;
}

/**
 * Go's JSON text for float32(x): the shortest decimal that round-trips through float32
 * (`0.123456789` → `0.12345679`, `0.7` → `0.7`). Throws for values Go cannot encode.
 */
export function float32String(x: number): string {
  return encodeNumber(toFloat32Number(x));
}

/**
 * Rounds a decimal literal (as Go's strconv.ParseFloat(s, 32) accepts it, without the special
 * spellings inf/nan) straight to float32, without the double rounding of Math.fround(Number(s)).
 * Returns undefined for text that is not a decimal literal, and ±Infinity on overflow.
 */
export function parseFloat32Decimal(text: string): number | undefined {
  const sign = text.startsWith("-") ? -1 : 1;
  const body = text.startsWith("-") || text.startsWith("+") ? text.slice(1) : text;
  const d = parseDecimal(body);
  if (d === undefined) return undefined;
  const approx = Number(body);
  if (d.digits === 0n || approx === 0) return sign * 0;
  if (!Number.isFinite(approx)) return sign * Infinity;
  let f = Math.fround(approx);
  if (!Number.isFinite(f)) {
    // The double may have been rounded up onto the overflow threshold from a decimal just below it.
    f = 3.4028234663852886e38;
    return roundsToFloat32(d, f) ? sign * f : sign * Infinity;
  }
  if (f === 0) f = nextFloat32(0, 1);
  for (const candidate of [f, nextFloat32(f, 1), nextFloat32(f, -1)]) {
    if (candidate > 0 && Number.isFinite(candidate) && roundsToFloat32(d, candidate)) return sign * candidate;
  }
  // Below half the smallest subnormal: rounds to zero.
  return sign * 0;
}
