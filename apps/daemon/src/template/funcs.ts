/**
 * Functions callable from templates: Go's built-ins and the ones Ollama adds
 * (`json`, `currentDate`, `yesterdayDate`, `toTypeScriptType`).
 */
import { FuncError } from "./errors.ts";
import { sprint, sprintf, sprintln } from "./format.ts";
import { goJSON } from "./json.ts";
import { compareStrings, goTypeName, hasField, isNil, isPlainObject, isRecord, truth } from "./values.ts";

export interface TemplateFunc {
  minArgs: number;
  /** Infinity for variadic functions. */
  maxArgs: number;
  call(args: unknown[]): unknown;
  /** and/or evaluate their operands lazily; the executor handles them. */
  shortCircuit?: "and" | "or";
  /** How many leading parameters are typed string in Go (printf's format). */
  stringParams?: number;
}

const fixed = (n: number, call: (args: unknown[]) => unknown): TemplateFunc => ({ minArgs: n, maxArgs: n, call });
const variadic = (min: number, call: (args: unknown[]) => unknown): TemplateFunc => ({ minArgs: min, maxArgs: Infinity, call });

/** fmt.Sprint of the arguments, except that a single string is used as is (Go's evalArgs). */
function evalArgs(args: unknown[]): string {
  if (args.length === 1 && typeof args[0] === "string") return args[0];
  return sprint(args);
}

// ---- comparison ----

type Kind = "bool" | "number" | "string" | "nil" | "other";
function basicKind(v: unknown): Kind {
  if (isNil(v)) return "nil";
  switch (typeof v) {
    case "boolean":
      return "bool";
    case "number":
    case "bigint":
      return "number";
    case "string":
      return "string";
  }
  return "other";
}

function eq(args: unknown[]): boolean {
  const [a, ...rest] = args;
  if (rest.length === 0) throw new FuncError("missing argument for comparison");
  const k1 = basicKind(a);
  for (const b of rest) {
    const k2 = basicKind(b);
    if (k1 !== k2) {
      if (k1 !== "nil" && k2 !== "nil") {
        throw new FuncError(`incompatible types for comparison: ${goTypeName(a)} and ${goTypeName(b)}`);
      }
      continue;
    }
     
    if (k1 === "nil" || (k1 === "number" ? a == b : a === b)) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 === "nil" || k1 === "other" || k2 === "nil" || k2 === "other") throw new FuncError("invalid type for comparison");
  if (k1 !== k2) throw new FuncError(`incompatible types for comparison: ${goTypeName(a)} and ${goTypeName(b)}`);
  if (k1 === "bool") throw new FuncError("invalid type for comparison");
  if (k1 === "string") return compareStrings(a as string, b as string) < 0;
  return (a as number) < (b as number);
}

// ---- length, index, slice ----

function length(v: unknown): number {
  if (isNil(v)) throw new FuncError("len of nil pointer");
  if (typeof v === "string") return Buffer.byteLength(v, "utf8");
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return (v as { length: number }).length;
  if (v instanceof Map) return v.size;
  if (isPlainObject(v)) return Object.keys(v).length;
  throw new FuncError(`len of type ${goTypeName(v)}`);
}

function indexArg(i: unknown, cap: number): number {
  if (isNil(i)) throw new FuncError("cannot index slice/array with nil");
  const n = typeof i === "bigint" ? Number(i) : i;
  if (typeof n !== "number" || !Number.isInteger(n)) throw new FuncError(`cannot index slice/array with type ${goTypeName(i)}`);
  if (n < 0 || n > cap) throw new FuncError(`index out of range: ${n}`);
  return n;
}

function index(args: unknown[]): unknown {
  let item = args[0];
  if (isNil(item)) throw new FuncError("index of untyped nil");
  for (const i of args.slice(1)) {
    if (isNil(item)) throw new FuncError("index of nil pointer");
    if (typeof item === "string") {
      const bytes = Buffer.from(item, "utf8");
      const x = indexArg(i, bytes.length);
      if (x >= bytes.length) throw new FuncError(`index out of range: ${x}`);
      item = bytes[x];
    } else if (Array.isArray(item) || ArrayBuffer.isView(item)) {
      const arr = item as ArrayLike<unknown>;
      const x = indexArg(i, arr.length);
      if (x >= arr.length) throw new FuncError(`index out of range: ${x}`);
      item = arr[x];
    } else if (item instanceof Map) {
      item = item.get(i);
    } else if (isRecord(item)) {
      if (typeof i !== "string") throw new FuncError(`value has type ${goTypeName(i)}; should be string`);
      item = hasField(item, i) ? item[i] : undefined;
    } else {
      throw new FuncError(`can't index item of type ${goTypeName(item)}`);
    }
  }
  return item;
}

function slice(args: unknown[]): unknown {
  const [item, ...idx] = args;
  if (isNil(item)) throw new FuncError("slice of untyped nil");
  if (idx.length > 3) throw new FuncError(`too many slice indexes: ${idx.length}`);
  let len: number;
  let bytes: Buffer | null = null;
  if (typeof item === "string") {
    if (idx.length === 3) throw new FuncError("cannot 3-index slice a string");
    bytes = Buffer.from(item, "utf8");
    len = bytes.length;
  } else if (Array.isArray(item) || ArrayBuffer.isView(item)) {
    len = (item as { length: number }).length;
  } else {
    throw new FuncError(`can't slice item of type ${goTypeName(item)}`);
  }
  const bounds = [0, len];
  idx.forEach((x, k) => (bounds[k] = indexArg(x, len)));
  const [lo, hi] = bounds as [number, number];
  if (lo > hi) throw new FuncError(`invalid slice index: ${lo} > ${hi}`);
  if (idx.length === 3 && hi > bounds[2]!) throw new FuncError(`invalid slice index: ${hi} > ${bounds[2]}`);
  if (bytes) return bytes.subarray(lo, hi).toString("utf8");
  return Array.prototype.slice.call(item, lo, hi);
}

// ---- escapers ----

function htmlEscape(s: string): string {
  return s.replace(/[\0"'&<>]/g, (c) => ({ "\0": "\uFFFD", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]!);
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
function jsEscape(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case "\\":
        out += "\\\\";
        continue;
      case "'":
        out += "\\'";
        continue;
      case '"':
        out += '\\"';
        continue;
      case "<":
        out += "\\u003C";
        continue;
      case ">":
        out += "\\u003E";
        continue;
      case "&":
        out += "\\u0026";
        continue;
      case "=":
        out += "\\u003D";
        continue;
    }
    if (cp < 0x20) out += "\\u00" + cp.toString(16).toUpperCase().padStart(2, "0");
    else if (cp < 0x80 || PRINTABLE.test(ch)) out += ch;
    else out += "\\u" + cp.toString(16).toUpperCase().padStart(4, "0");
  }
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** url.QueryEscape: only letters, digits and -_.~ stay; space becomes '+'. */
function queryEscape(s: string): string {
  return encodeURIComponent(s.replace(LONE_SURROGATE, "\uFFFD"))
    .replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, "+");
}

// ---- Ollama's additions ----

function localDate(daysAgo: number): string {
  const d = new Date();
  d.setDate(d.getDate() - daysAgo);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function tsType(jsonType: unknown): string {
  switch (jsonType) {
    case "string":
      return "string";
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "array":
      return "any[]";
    case "object":
      return "Record<string, any>";
    case "null":
      return "null";
    default:
      return "any";
  }
}

/** A tool property's TypeScript type. Accepts the template field names (AnyOf, Type) or the JSON ones (anyOf, type). */
export function toTypeScriptType(prop: unknown): string {
  if (!isRecord(prop)) return "any";
  const field = (goName: string, jsonName: string): unknown => (hasField(prop, goName) ? prop[goName] : prop[jsonName]);
  const anyOf = field("AnyOf", "anyOf");
  if (Array.isArray(anyOf) && anyOf.length > 0) return anyOf.map(toTypeScriptType).join(" | ");
  const type = field("Type", "type");
  const types = Array.isArray(type) ? type : typeof type === "string" && type !== "" ? [type] : [];
  if (types.length === 0) return "any";
  return types.map(tsType).join(" | ");
}

export const BUILTIN_FUNCS: ReadonlyMap<string, TemplateFunc> = new Map<string, TemplateFunc>([
  ["and", { ...variadic(1, (a) => a[a.length - 1]), shortCircuit: "and" }],
  ["or", { ...variadic(1, (a) => a[a.length - 1]), shortCircuit: "or" }],
  ["not", fixed(1, (a) => !truth(a[0]))],
  ["len", fixed(1, (a) => length(a[0]))],
  ["index", variadic(1, index)],
  ["slice", variadic(1, slice)],
  ["eq", variadic(1, eq)],
  ["ne", fixed(2, (a) => !eq(a))],
  ["lt", fixed(2, (a) => lt(a[0], a[1]))],
  ["le", fixed(2, (a) => lt(a[0], a[1]) || eq(a))],
  ["gt", fixed(2, (a) => !(lt(a[0], a[1]) || eq(a)))],
  ["ge", fixed(2, (a) => !lt(a[0], a[1]))],
  ["print", variadic(0, sprint)],
  ["println", variadic(0, sprintln)],
  [
    "printf",
    {
      ...variadic(1, (a) => {
        if (typeof a[0] !== "string") throw new FuncError(`wrong type for value; expected string; got ${goTypeName(a[0])}`);
        return sprintf(a[0], a.slice(1));
      }),
      stringParams: 1,
    },
  ],
  ["html", variadic(0, (a) => htmlEscape(evalArgs(a)))],
  ["js", variadic(0, (a) => jsEscape(evalArgs(a)))],
  ["urlquery", variadic(0, (a) => queryEscape(evalArgs(a)))],
  [
    "call",
    variadic(1, (a) => {
      const [fn, ...rest] = a;
      if (isNil(fn)) throw new FuncError("call of nil");
      if (typeof fn !== "function") throw new FuncError(`non-function of type ${goTypeName(fn)}`);
      return (fn as (...x: unknown[]) => unknown)(...rest);
    }),
  ],
  [
    "json",
    fixed(1, (a) => {
      try {
        return goJSON(a[0]);
      } catch {
        return "";
      }
    }),
  ],
  ["currentDate", variadic(0, () => localDate(0))],
  ["yesterdayDate", variadic(0, () => localDate(1))],
  ["toTypeScriptType", fixed(1, (a) => toTypeScriptType(a[0]))],
]);
