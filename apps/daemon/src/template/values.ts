/**
 * How JavaScript data stands in for Go values during execution.
 *
 * - `undefined` and `null` are Go's nil (an absent map entry or a nil interface).
 * - A `Map` is a Go map: ranged and JSON-encoded in sorted key order.
 * - A plain object is also read like a Go map (`.Field` looks up the property; a missing one is nil,
 *   where a Go struct would be an error), ranged in sorted key order, but JSON-encoded in insertion
 *   order so callers can mirror a Go struct's field order.
 * - An object with a callable `String` property is a Go fmt.Stringer: printing uses it.
 * - A function-valued property is a method: `.Name arg1 arg2` calls it.
 * - Numbers that are integers print as Go ints, others as Go float64.
 */

export const isNil = (v: unknown): v is null | undefined => v === undefined || v === null;

export const isGoInt = (n: number): boolean => Number.isInteger(n) && Math.abs(n) < 2 ** 63;

/** A plain JSON-like object: created by `{}` / JSON.parse / Object.create(null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Any object read by field name: plain objects and class instances (not arrays, Maps, byte arrays). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) && !ArrayBuffer.isView(v);
}

/** Own or inherited property, but never one of Object.prototype's (`constructor`, `toString`, …). */
export function hasField(obj: object, name: string): boolean {
  for (let o: object | null = obj; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.prototype.hasOwnProperty.call(o, name)) return true;
  }
  return false;
}

/** The `String()` of a Go-style Stringer, if the value is one. */
export function stringerOf(v: unknown): (() => unknown) | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  if (!hasField(v, "String")) return undefined;
  const fn = (v as { String?: unknown }).String;
  return typeof fn === "function" ? () => (fn as () => unknown).call(v) : undefined;
}

/** Orders strings by code point, which is Go's byte-wise order of their UTF-8 forms. */
export function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return compareStrings(String(a), String(b));
}

/** Entries of a map-like value in Go's map order (sorted keys); null for other values. */
export function mapEntries(v: unknown): [unknown, unknown][] | null {
  if (v instanceof Map) return [...(v as Map<unknown, unknown>).entries()].sort((x, y) => compareKeys(x[0], y[0]));
  if (isPlainObject(v)) return Object.entries(v).sort((x, y) => compareStrings(x[0], y[0]));
  return null;
}

/** Go's truth: false, 0, nil, and empty strings, slices and maps are false; structs are true. */
export function truth(v: unknown): boolean {
  if (isNil(v)) return false;
  switch (typeof v) {
    case "boolean":
      return v;
    case "number":
      return v !== 0;
    case "bigint":
      return v !== 0n;
    case "string":
      return v.length > 0;
    case "function":
      return true;
  }
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return (v as { length: number }).length > 0;
  if (v instanceof Map || v instanceof Set) return v.size > 0;
  if (isPlainObject(v)) return Object.keys(v).length > 0;
  return true;
}

/** The Go type a value stands for, as Go spells it in messages. */
export function goTypeName(v: unknown): string {
  if (isNil(v)) return "<nil>";
  switch (typeof v) {
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "number":
      return isGoInt(v) ? "int" : "float64";
    case "bigint":
      return "int64";
    case "function":
      return "func";
  }
  if (v instanceof Uint8Array) return "[]uint8";
  if (Array.isArray(v)) return "[]interface {}";
  if (v instanceof Map || isPlainObject(v)) return "map[string]interface {}";
  const ctor = (v as { constructor?: { name?: string } }).constructor?.name;
  return ctor || "struct";
}
