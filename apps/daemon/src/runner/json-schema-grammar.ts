// `format` as a JSON schema, turned into a GBNF grammar that llama.cpp enforces while sampling
// (docs/daemon.md, "Structured outputs"). The keywords are those llama.cpp's own JSON-schema
// converter enforces, which is what Ollama relies on: types, enum, const, anyOf/oneOf, allOf of
// objects, local $ref, properties/required/additionalProperties, items/prefixItems/minItems/
// maxItems, minLength/maxLength, pattern, the date/time/uuid formats, and integer bounds. Anything
// else is refused with a 400 that names the keyword and where it is, instead of being ignored.
// node-llama-cpp's converter is not used: it knows neither anyOf, nor bounds, nor patterns, and
// its integers allow exponents.
//
// Clients choose the schemas, so the work is bounded: nesting depth, the number of schema nodes,
// pattern length, repetition counts and the grammar's size.

import { StatusError } from "../errors.ts";

const MAX_DEPTH = 64;
const MAX_NODES = 10_000;
const MAX_PATTERN = 1_000;
const MAX_REPEAT = 1_000;
const MAX_GRAMMAR = 1 << 20;

/** Keywords that describe a schema without constraining it. */
const ANNOTATIONS = new Set([
  "$schema", "$id", "$comment", "$anchor", "title", "description", "default", "examples", "deprecated",
  "readOnly", "writeOnly", "discriminator", "nullable", "x-order",
]);

const PRIMITIVES: Record<string, string> = {
  space: '| " " | "\\n" [ \\t]{0,20}',
  boolean: '("true" | "false") space',
  null: '"null" space',
  "integral-part": "[0] | [1-9] [0-9]{0,15}",
  "decimal-part": "[0-9]{1,16}",
  number: '("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)? space',
  integer: '("-"? integral-part) space',
  char: '[^"\\\\\\x7F\\x00-\\x1F] | [\\\\] (["\\\\bfnrt] | "u" [0-9a-fA-F]{4})',
  string: '"\\"" char* "\\"" space',
  value: "object | array | string | number | boolean | null",
  object: '"{" space ( string ":" space value ("," space string ":" space value)* )? "}" space',
  array: '"[" space ( value ("," space value)* )? "]" space',
  "date-fullyear": "[0-9]{4}",
  "date-month": '"0" [1-9] | "1" [0-2]',
  "date-day": '"0" [1-9] | [12] [0-9] | "3" [01]',
  "time-hour": "[01] [0-9] | \"2\" [0-3]",
  "time-minute": "[0-5] [0-9]",
  "time-second": "[0-5] [0-9] | \"60\"",
  "time-frac": '"." [0-9]{1,9}',
  "time-offset": '"Z" | [+-] time-hour ":" time-minute',
  date: 'date-fullyear "-" date-month "-" date-day',
  time: 'time-hour ":" time-minute ":" time-second time-frac? time-offset',
  uuid: '[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}',
};

/** Which primitive rules each primitive needs. */
const PRIMITIVE_DEPS: Record<string, string[]> = {
  boolean: ["space"],
  null: ["space"],
  number: ["integral-part", "decimal-part", "space"],
  integer: ["integral-part", "space"],
  string: ["char", "space"],
  value: ["object", "array", "string", "number", "boolean", "null"],
  object: ["string", "value", "space"],
  array: ["value", "space"],
  date: ["date-fullyear", "date-month", "date-day"],
  time: ["time-hour", "time-minute", "time-second", "time-frac", "time-offset"],
  "time-offset": ["time-hour", "time-minute"],
};

const FORMATS: Record<string, string> = {
  date: "date",
  time: "time",
  "date-time": 'date "T" time',
  uuid: "uuid",
};

type Schema = Record<string, unknown>;

function refuse(path: string, message: string): never {
  throw new StatusError(400, `invalid format: ${message}${path ? ` at ${path}` : ""}`);
}

/** A GBNF string literal. */
function literal(text: string): string {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** A JSON value as GBNF: its compact JSON text, followed by optional space. */
function jsonLiteral(v: unknown): string {
  return `${literal(JSON.stringify(v))} space`;
}

class GrammarBuilder {
  private readonly rules = new Map<string, string>();
  private readonly primitives = new Set<string>();
  private readonly refs = new Map<string, string>();
  private nodes = 0;
  private size = 0;

  constructor(private readonly root: Schema) {}

  build(): string {
    const top = this.visit(this.root, { path: "", depth: 0, name: "root" });
    if (top !== "root") this.add("root", top);
    const lines = [...this.rules].map(([k, v]) => `${k} ::= ${v}`);
    for (const p of this.primitives) lines.push(`${p} ::= ${PRIMITIVES[p]}`);
    return `${lines.join("\n")}\n`;
  }

  private usePrimitive(name: string): string {
    if (!this.primitives.has(name)) {
      this.primitives.add(name);
      for (const d of PRIMITIVE_DEPS[name] ?? []) this.usePrimitive(d);
    }
    return name;
  }

  private add(name: string, body: string): string {
    let rule = name.replace(/[^a-zA-Z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "r";
    if (this.rules.has(rule) || rule in PRIMITIVES) {
      let i = 1;
      while (this.rules.has(`${rule}-${i}`)) i++;
      rule = `${rule}-${i}`;
    }
    this.size += rule.length + body.length;
    if (this.size > MAX_GRAMMAR) refuse("", `the schema's grammar would be larger than ${MAX_GRAMMAR} bytes`);
    this.rules.set(rule, body);
    return rule;
  }

  /** A rule name or a parenthesised expression for `schema`. */
  private visit(schema: unknown, at: { path: string; depth: number; name: string }): string {
    const { path, depth, name } = at;
    if (++this.nodes > MAX_NODES) refuse(path, `the schema has more than ${MAX_NODES} parts`);
    if (depth > MAX_DEPTH) refuse(path, `the schema is nested deeper than ${MAX_DEPTH} levels`);
    if (schema === true || (typeof schema === "object" && schema !== null && !Array.isArray(schema) && Object.keys(schema).every((k) => ANNOTATIONS.has(k)))) {
      return this.usePrimitive("value");
    }
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) refuse(path, "a schema must be an object");
    const s = schema as Schema;
    const child = (key: string, v: unknown, suffix = key): string => this.visit(v, { path: `${path}/${key}`, depth: depth + 1, name: `${name}-${suffix}` });

    if ("$ref" in s) return this.ref(s, at);
    // A literal ends in optional space, a rule of its own that nothing else may have asked for yet.
    if ("const" in s || "enum" in s) this.usePrimitive("space");
    if ("const" in s) return this.add(name, jsonLiteral(s["const"]));
    if ("enum" in s) {
      const values = s["enum"];
      if (!Array.isArray(values) || values.length === 0) refuse(`${path}/enum`, "enum must be a non-empty list");
      return this.add(name, values.map(jsonLiteral).join(" | "));
    }
    for (const k of ["anyOf", "oneOf"] as const) {
      if (k in s) {
        const alts = s[k];
        if (!Array.isArray(alts) || alts.length === 0) refuse(`${path}/${k}`, `${k} must be a non-empty list of schemas`);
        this.checkKeywords(s, [k], path);
        return this.add(name, alts.map((a, i) => child(`${k}/${i}`, a, String(i))).join(" | "));
      }
    }
    if ("allOf" in s) return this.visit(this.mergeAllOf(s, path), at);

    const type = s["type"];
    if (Array.isArray(type)) {
      if (type.length === 0) refuse(`${path}/type`, "type must name at least one type");
      const { type: _type, ...rest } = s;
      return this.add(name, type.map((t, i) => this.visit({ ...rest, type: t }, { path, depth: depth + 1, name: `${name}-${i}` })).join(" | "));
    }
    const inferred = type ?? ("properties" in s ? "object" : "items" in s || "prefixItems" in s ? "array" : undefined);
    switch (inferred) {
      case "object":
        return this.object(s, at, child);
      case "array":
        return this.array(s, at, child);
      case "string":
        return this.string(s, at);
      case "integer":
        return this.integer(s, at);
      case "number":
        this.checkKeywords(s, ["type"], path);
        return this.usePrimitive("number");
      case "boolean":
      case "null":
        this.checkKeywords(s, ["type"], path);
        return this.usePrimitive(inferred as string);
      case undefined:
        return refuse(path, `unsupported JSON Schema keyword "${Object.keys(s).find((k) => !ANNOTATIONS.has(k))}"`);
      default:
        return refuse(`${path}/type`, `unknown type ${JSON.stringify(inferred)}`);
    }
  }

  /** Refuses keywords that this kind of schema does not enforce. */
  private checkKeywords(s: Schema, allowed: readonly string[], path: string): void {
    for (const k of Object.keys(s)) {
      if (!ANNOTATIONS.has(k) && !allowed.includes(k) && k !== "$defs" && k !== "definitions") {
        refuse(path, `unsupported JSON Schema keyword "${k}"${s["type"] ? ` for type ${JSON.stringify(s["type"])}` : ""}`);
      }
    }
  }

  private ref(s: Schema, at: { path: string; depth: number; name: string }): string {
    const ref = s["$ref"];
    const m = typeof ref === "string" ? /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref) : null;
    if (!m) refuse(`${at.path}/$ref`, `only local references such as "#/$defs/name" are supported, got ${JSON.stringify(ref)}`);
    const defs = this.root[m[1]!];
    const key = decodeURIComponent(m[2]!).replace(/~1/g, "/").replace(/~0/g, "~");
    const target = typeof defs === "object" && defs !== null ? (defs as Schema)[key] : undefined;
    if (target === undefined) refuse(`${at.path}/$ref`, `${ref} names no definition`);
    let rule = this.refs.get(ref as string);
    if (!rule) {
      // Named before it is visited, so a recursive definition refers to itself.
      rule = this.add(`ref-${key}`, "");
      this.refs.set(ref as string, rule);
      const body = this.visit(target, { path: `/${m[1]}/${m[2]}`, depth: at.depth + 1, name: `${rule}-def` });
      this.size += body.length;
      this.rules.set(rule, body);
    }
    return rule;
  }

  private mergeAllOf(s: Schema, path: string): Schema {
    const parts = s["allOf"];
    if (!Array.isArray(parts) || parts.length === 0) refuse(`${path}/allOf`, "allOf must be a non-empty list of schemas");
    const { allOf: _allOf, ...rest } = s;
    const merged: Schema = { ...rest, type: "object", properties: { ...((rest["properties"] as Schema) ?? {}) }, required: [...((rest["required"] as string[]) ?? [])] };
    for (const [i, part] of parts.entries()) {
      let p = part as Schema;
      if (typeof p === "object" && p !== null && typeof p["$ref"] === "string") {
        const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(p["$ref"] as string);
        p = (m ? ((this.root[m[1]!] as Schema | undefined)?.[m[2]!] as Schema | undefined) : undefined) ?? refuse(`${path}/allOf/${i}`, `${p["$ref"] as string} names no definition`);
      }
      if (typeof p !== "object" || p === null || (p["type"] !== undefined && p["type"] !== "object") || !("properties" in p)) {
        refuse(`${path}/allOf/${i}`, "allOf is supported for object schemas with properties only");
      }
      Object.assign(merged["properties"] as Schema, p["properties"]);
      (merged["required"] as string[]).push(...((p["required"] as string[] | undefined) ?? []));
    }
    return merged;
  }

  private object(s: Schema, at: { path: string; name: string }, child: (key: string, v: unknown, suffix?: string) => string): string {
    const { path, name } = at;
    this.checkKeywords(s, ["type", "properties", "required", "additionalProperties"], path);
    const props = (s["properties"] ?? {}) as Schema;
    if (typeof props !== "object" || Array.isArray(props)) refuse(`${path}/properties`, "properties must be an object");
    const required = s["required"] ?? [];
    if (!Array.isArray(required) || !required.every((r) => typeof r === "string")) refuse(`${path}/required`, "required must be a list of property names");
    const additional = s["additionalProperties"];
    if (Object.keys(props).length === 0 && (additional === undefined || additional === true)) return this.usePrimitive("object");
    this.usePrimitive("space");
    const kv = (key: string): string => this.add(`${name}-${key}-kv`, `${literal(JSON.stringify(key))} space ":" space ${child(`properties/${key}`, props[key], key)}`);
    const req = Object.keys(props).filter((k) => required.includes(k));
    const opt = Object.keys(props).filter((k) => !required.includes(k));
    const reqRules = req.map(kv);
    const optRules = opt.map(kv);
    if (additional !== undefined && additional !== false) {
      const value = additional === true ? this.usePrimitive("value") : child("additionalProperties", additional, "additional");
      this.usePrimitive("string");
      optRules.push(this.add(`${name}-additional-kvs`, `string ":" space ${value} ("," space string ":" space ${value})*`));
    }
    let body = reqRules.join(' "," space ');
    if (optRules.length > 0) {
      // Optional properties follow the required ones in their order, each present or not.
      if (reqRules.length > 0) {
        body += optRules.map((r) => ` ("," space ${r})?`).join("");
      } else {
        // Without a required one, the first property present takes no comma before it.
        let rest = "";
        const alts: string[] = [];
        for (let i = optRules.length - 1; i >= 0; i--) {
          alts.unshift(`${optRules[i]}${rest}`);
          rest = ` ("," space ${optRules[i]})?${rest}`;
        }
        body = `(${this.add(`${name}-opts`, alts.join(" | "))})?`;
      }
    }
    return this.add(name, `"{" space ${body} "}" space`);
  }

  private array(s: Schema, at: { path: string; name: string }, child: (key: string, v: unknown, suffix?: string) => string): string {
    const { path, name } = at;
    this.checkKeywords(s, ["type", "items", "prefixItems", "minItems", "maxItems"], path);
    this.usePrimitive("space");
    const prefix = s["prefixItems"];
    if (prefix !== undefined) {
      if (!Array.isArray(prefix)) refuse(`${path}/prefixItems`, "prefixItems must be a list of schemas");
      const items = prefix.map((p, i) => child(`prefixItems/${i}`, p, `item-${i}`));
      return this.add(name, `"[" space ${items.join(' "," space ')} "]" space`);
    }
    const min = count(s, "minItems", path) ?? 0;
    const max = count(s, "maxItems", path);
    if (max !== undefined && max < min) refuse(`${path}/maxItems`, "maxItems is less than minItems");
    const item = s["items"] === undefined ? this.usePrimitive("value") : child("items", s["items"], "item");
    return this.add(name, `"[" space ${repeatSeparated(item, min, max)} "]" space`);
  }

  private string(s: Schema, at: { path: string; name: string }): string {
    const { path, name } = at;
    this.checkKeywords(s, ["type", "minLength", "maxLength", "pattern", "format"], path);
    this.usePrimitive("space");
    if (s["pattern"] !== undefined) {
      if ("minLength" in s || "maxLength" in s || "format" in s) refuse(path, "pattern cannot be combined with minLength, maxLength or format");
      const pattern = s["pattern"];
      if (typeof pattern !== "string") refuse(`${path}/pattern`, "pattern must be a string");
      if (pattern.length > MAX_PATTERN) refuse(`${path}/pattern`, `pattern is longer than ${MAX_PATTERN} characters`);
      this.usePrimitive("char");
      return this.add(name, `"\\"" (${new PatternConverter(pattern, `${path}/pattern`).convert()}) "\\"" space`);
    }
    if (s["format"] !== undefined) {
      const f = FORMATS[s["format"] as string];
      if (!f) refuse(`${path}/format`, `unsupported string format ${JSON.stringify(s["format"])}; supported: ${Object.keys(FORMATS).join(", ")}`);
      for (const p of ["date", "time", "uuid"]) if (f.includes(p)) this.usePrimitive(p);
      return this.add(name, `"\\"" ${f} "\\"" space`);
    }
    const min = count(s, "minLength", path);
    const max = count(s, "maxLength", path);
    if (min === undefined && max === undefined) return this.usePrimitive("string");
    if (max !== undefined && max < (min ?? 0)) refuse(`${path}/maxLength`, "maxLength is less than minLength");
    this.usePrimitive("char");
    return this.add(name, `"\\"" char{${min ?? 0},${max ?? ""}} "\\"" space`);
  }

  private integer(s: Schema, at: { path: string; name: string }): string {
    const { path, name } = at;
    this.checkKeywords(s, ["type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"], path);
    const bound = (k: string): number | undefined => {
      const v = s[k];
      if (v === undefined) return undefined;
      if (typeof v !== "number" || !Number.isFinite(v)) refuse(`${path}/${k}`, `${k} must be a number`);
      if (Math.abs(v) > Number.MAX_SAFE_INTEGER) refuse(`${path}/${k}`, `${k} is outside ±${Number.MAX_SAFE_INTEGER}`);
      return v;
    };
    const bounds = [bound("minimum"), bound("exclusiveMinimum"), bound("maximum"), bound("exclusiveMaximum")];
    const lows = [bounds[0] !== undefined ? Math.ceil(bounds[0]) : undefined, bounds[1] !== undefined ? Math.floor(bounds[1]) + 1 : undefined].filter((v) => v !== undefined);
    const highs = [bounds[2] !== undefined ? Math.floor(bounds[2]) : undefined, bounds[3] !== undefined ? Math.ceil(bounds[3]) - 1 : undefined].filter((v) => v !== undefined);
    const lo = lows.length ? Math.max(...lows) : undefined;
    const hi = highs.length ? Math.min(...highs) : undefined;
    if (lo === undefined && hi === undefined) return this.usePrimitive("integer");
    if (lo !== undefined && hi !== undefined && lo > hi) refuse(path, "no integer lies within minimum and maximum");
    this.usePrimitive("space");
    return this.add(name, `(${integerRange(lo, hi)}) space`);
  }
}

/** A non-negative whole-number property such as minItems. */
function count(s: Schema, key: string, path: string): number | undefined {
  const v = s[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) refuse(`${path}/${key}`, `${key} must be a non-negative integer`);
  if (v > MAX_REPEAT) refuse(`${path}/${key}`, `${key} above ${MAX_REPEAT} is not supported`);
  return v;
}

/** `min` to `max` (unbounded when undefined) items separated by commas. */
function repeatSeparated(item: string, min: number, max: number | undefined): string {
  const more = `("," space ${item})`;
  if (max === 0) return "";
  if (min === 0) return `(${item} ${more}{0,${max === undefined ? "" : max - 1}})?`;
  return `${item} ${more}{${min - 1},${max === undefined ? "" : max - 1}}`;
}

/** Digit strings of one length from `lo` to `hi` (same length), as GBNF. */
function sameLength(lo: string, hi: string): string {
  if (lo.length === 0) return "";
  if (lo === hi) return literal(lo);
  if (lo[0] === hi[0]) return `${literal(lo[0]!)} (${sameLength(lo.slice(1), hi.slice(1))})`;
  const n = lo.length - 1;
  const any = n > 0 ? ` [0-9]{${n}}` : "";
  const restLo = lo.slice(1);
  const restHi = hi.slice(1);
  const alts: string[] = [];
  const loDigit = Number(lo[0]);
  const hiDigit = Number(hi[0]);
  let from = loDigit;
  let to = hiDigit;
  if (restLo !== "0".repeat(n)) {
    alts.push(`${literal(lo[0]!)} (${sameLength(restLo, "9".repeat(n))})`);
    from++;
  }
  const topPartial = restHi !== "9".repeat(n);
  if (topPartial) to--;
  if (from <= to) alts.push(`[${from}-${to}]${any}`);
  if (topPartial) alts.push(`${literal(hi[0]!)} (${sameLength("0".repeat(n), restHi)})`);
  return alts.join(" | ");
}

/** Whole numbers from `lo` to `hi` without leading zeros; either may be unbounded. */
function nonNegativeRange(lo: number, hi: number | undefined): string {
  const alts: string[] = [];
  const loLen = String(lo).length;
  const hiLen = hi === undefined ? 16 : String(hi).length;
  for (let len = loLen; len <= hiLen; len++) {
    const first = len === 1 ? 0 : 10 ** (len - 1);
    const last = 10 ** len - 1;
    const a = Math.max(lo, first);
    const b = hi === undefined ? last : Math.min(hi, last);
    if (a > b) continue;
    if (hi === undefined && len === hiLen && a === first) {
      alts.push(`[1-9] [0-9]{${len - 1},}`);
      break;
    }
    alts.push(sameLength(String(a), String(b)));
  }
  return alts.map((a) => `(${a})`).join(" | ");
}

/** Integers from `lo` to `hi` (either unbounded when undefined), as GBNF. */
export function integerRange(lo: number | undefined, hi: number | undefined): string {
  const alts: string[] = [];
  if (lo === undefined || lo < 0) {
    // Negative numbers: "-" and a magnitude from max(1, -hi) to -lo.
    const magLo = hi !== undefined && hi < 0 ? -hi : 1;
    alts.push(`"-" (${nonNegativeRange(magLo, lo === undefined ? undefined : -lo)})`);
  }
  if (hi === undefined || hi >= 0) alts.push(nonNegativeRange(Math.max(lo ?? 0, 0), hi));
  return alts.join(" | ");
}

/**
 * A regular expression (the ECMA subset llama.cpp's converter takes) as GBNF for the characters
 * of a JSON string: literals, escapes, classes, `.`, groups, alternation and quantifiers, anchored
 * with `^…$`. Lookarounds, backreferences and lazy quantifiers cannot be expressed and are refused.
 */
class PatternConverter {
  private i = 0;
  private readonly src: string;

  constructor(
    pattern: string,
    private readonly path: string,
  ) {
    if (!pattern.startsWith("^") || !pattern.endsWith("$") || pattern.endsWith("\\$")) {
      refuse(path, 'pattern must start with "^" and end with "$"');
    }
    this.src = pattern.slice(1, -1);
  }

  convert(): string {
    const out = this.alternation();
    if (this.i < this.src.length) this.fail(`unexpected ${JSON.stringify(this.src[this.i])}`);
    return out;
  }

  private fail(what: string): never {
    return refuse(this.path, `pattern not supported: ${what} at character ${this.i + 1}`);
  }

  private alternation(): string {
    const alts = [this.sequence()];
    while (this.src[this.i] === "|") {
      this.i++;
      alts.push(this.sequence());
    }
    return alts.join(" | ");
  }

  private sequence(): string {
    const parts: string[] = [];
    while (this.i < this.src.length && this.src[this.i] !== "|" && this.src[this.i] !== ")") {
      const atom = this.atom();
      parts.push(this.quantified(atom));
    }
    return parts.length ? parts.join(" ") : '""';
  }

  private quantified(atom: string): string {
    const c = this.src[this.i];
    let q = "";
    if (c === "*" || c === "+" || c === "?") {
      this.i++;
      q = c;
    } else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
      if (!m) this.fail('a "{" that is not a repetition');
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === "" ? undefined : Number(m[3]);
      if (min > MAX_REPEAT || (max !== undefined && (max > MAX_REPEAT || max < min))) this.fail(`the repetition ${m[0]}`);
      this.i += m[0].length;
      q = `{${min}${m[2] === undefined ? "" : `,${max ?? ""}`}}`;
    }
    const next = this.src[this.i];
    if (q && next !== undefined && "?+*{".includes(next)) this.fail("a lazy or repeated quantifier");
    return q ? `(${atom})${q}` : atom;
  }

  private atom(): string {
    const c = this.src[this.i]!;
    if (c === "(") {
      this.i++;
      if (this.src[this.i] === "?") {
        if (this.src[this.i + 1] !== ":") this.fail("a lookaround or named group");
        this.i += 2;
      }
      const inner = this.alternation();
      if (this.src[this.i] !== ")") this.fail("an unclosed group");
      this.i++;
      return `(${inner})`;
    }
    if (c === "[") return this.charClass();
    if (c === ".") {
      this.i++;
      return "char";
    }
    if (c === "^" || c === "$") this.fail("an anchor inside the pattern");
    if ("*+?{".includes(c)) this.fail(`a quantifier with nothing before it`);
    if (c === "\\") return this.escape(false);
    this.i++;
    return this.charLiteral(c);
  }

  /** One literal character as it must appear inside the JSON string. */
  private charLiteral(c: string): string {
    if (c === '"' || c === "\\") return literal(`\\${c}`);
    if (c.codePointAt(0)! < 0x20) this.fail("a control character");
    return literal(c);
  }

  private escape(inClass: boolean): string {
    const c = this.src[this.i + 1];
    if (c === undefined) this.fail("a trailing backslash");
    this.i += 2;
    const classes: Record<string, string> = { d: "0-9", w: "a-zA-Z0-9_", s: " \\t" };
    if (c in classes) return inClass ? classes[c]! : `[${classes[c]}]`;
    if ("DWS".includes(c)) {
      const neg = classes[c.toLowerCase()]!;
      if (inClass) this.fail(`\\${c} inside a class`);
      return `[^${neg}"\\\\\\x00-\\x1F\\x7F]`;
    }
    if (/[0-9bBkpPu]/.test(c)) this.fail(`the escape \\${c}`);
    const map: Record<string, string> = { n: "\n", t: "\t", r: "\r" };
    const ch = map[c] ?? c;
    if (inClass) return classChar(ch);
    if (map[c]) return literal(c === "n" ? "\\n" : c === "t" ? "\\t" : "\\r");
    return this.charLiteral(ch);
  }

  private charClass(): string {
    this.i++;
    let negate = false;
    if (this.src[this.i] === "^") {
      negate = true;
      this.i++;
    }
    let body = "";
    let first = true;
    while (this.i < this.src.length && (this.src[this.i] !== "]" || first)) {
      first = false;
      const c = this.src[this.i]!;
      if (c === "\\") {
        body += this.escape(true);
        continue;
      }
      if (c === '"' || c === "\\" || c.codePointAt(0)! < 0x20) this.fail("a quote, backslash or control character in a class");
      body += classChar(c);
      this.i++;
    }
    if (this.src[this.i] !== "]") this.fail("an unclosed class");
    this.i++;
    // A negated class must not let a quote, backslash or control character into the string.
    return negate ? `[^${body}"\\\\\\x00-\\x1F\\x7F]` : `[${body}]`;
  }
}

function classChar(c: string): string {
  if (c === "]" || c === "[" || c === "\\" || c === "^") return `\\${c}`;
  if (c === "\n") return "\\n";
  if (c === "\t") return "\\t";
  if (c === "\r") return "\\r";
  return c;
}

/** The GBNF grammar for a JSON schema `format`; a 400 names what cannot be enforced. */
export function jsonSchemaGrammar(schema: Schema): string {
  return new GrammarBuilder(schema).build();
}
