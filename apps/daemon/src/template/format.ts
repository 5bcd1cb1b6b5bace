/**
 * The parts of Go's fmt and strconv that templates reach: the %v form of
 * values, print/println/printf, and strconv.Quote.
 */
import { goTypeName, isGoInt, isNil, isPlainObject, mapEntries, stringerOf } from "./values.ts";

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const isPrint = (ch: string): boolean => ch === " " || PRINTABLE.test(ch);

/** strconv.Quote: a double-quoted Go string literal. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (cp >= 0xd800 && cp < 0xe000) out += "\\ufffd";
    else if (isPrint(ch)) out += ch;
    else if (cp === 7) out += "\\a";
    else if (cp === 8) out += "\\b";
    else if (cp === 12) out += "\\f";
    else if (cp === 10) out += "\\n";
    else if (cp === 13) out += "\\r";
    else if (cp === 9) out += "\\t";
    else if (cp === 11) out += "\\v";
    else if (cp < 0x20 || cp === 0x7f) out += "\\x" + cp.toString(16).padStart(2, "0");
    else if (cp < 0x10000) out += "\\u" + cp.toString(16).padStart(4, "0");
    else out += "\\U" + cp.toString(16).padStart(8, "0");
  }
  return out + '"';
}

function formatInt(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : BigInt(n).toString();
}

function specialFloat(x: number): string | null {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "+Inf";
  if (x === -Infinity) return "-Inf";
  return null;
}

/** Decimal digits (no trailing zeros) and decimal-point position of |x|, rounded to `prec` significant digits (-1: shortest). */
function decimalDigits(x: number, prec: number): { digits: string; dp: number } {
  const s = prec < 0 ? Math.abs(x).toExponential() : Math.abs(x).toExponential(Math.min(prec - 1, 100));
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s)!;
  let digits = m[1]! + (m[2] ?? "");
  digits = digits.replace(/0+$/, "") || "0";
  return { digits, dp: Number(m[3]) + 1 };
}

function expForm(digits: string, dp: number, upper: boolean): string {
  const exp = digits === "0" ? 0 : dp - 1;
  const mant = digits[0]! + (digits.length > 1 ? "." + digits.slice(1) : "");
  const e = (exp < 0 ? "-" : "+") + String(Math.abs(exp)).padStart(2, "0");
  return mant + (upper ? "E" : "e") + e;
}

function fixedForm(digits: string, dp: number): string {
  if (digits === "0") return "0";
  if (dp <= 0) return "0." + "0".repeat(-dp) + digits;
  if (dp >= digits.length) return digits + "0".repeat(dp - digits.length);
  return digits.slice(0, dp) + "." + digits.slice(dp);
}

/** Go's %g (and %v for floats): shortest form when prec < 0. */
export function formatFloatG(x: number, prec = -1, upper = false): string {
  const special = specialFloat(x);
  if (special !== null) return special;
  if (prec === 0) prec = 1;
  const { digits, dp } = decimalDigits(x, prec);
  let eprec = prec < 0 ? 6 : prec;
  if (prec >= 0 && eprec > digits.length && digits.length >= dp) eprec = digits.length;
  const exp = digits === "0" ? 0 : dp - 1;
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  return sign + (exp < -4 || exp >= eprec ? expForm(digits, dp, upper) : fixedForm(digits, dp));
}

function formatFloatE(x: number, prec: number, upper: boolean): string {
  const special = specialFloat(x);
  if (special !== null) return special;
  const s = x.toExponential(Math.min(prec, 100));
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s)!;
  return m[1]! + (upper ? "E" : "e") + m[2]! + m[3]!.padStart(2, "0");
}

function formatFloatF(x: number, prec: number): string {
  const special = specialFloat(x);
  if (special !== null) return special;
  const p = Math.min(prec, 100);
  if (Math.abs(x) < 1e21) return x.toFixed(p);
  return BigInt(x).toString() + (p > 0 ? "." + "0".repeat(p) : "");
}

/** The %v form of a value, as fmt.Sprint prints it. */
export function formatValue(v: unknown): string {
  if (isNil(v)) return "<nil>";
  const str = stringerOf(v);
  if (str) return String(str());
  switch (typeof v) {
    case "string":
      return v;
    case "number":
      return isGoInt(v) ? formatInt(v) : formatFloatG(v);
    case "boolean":
    case "bigint":
      return String(v);
    case "function":
      return "<func>";
    case "symbol":
      return v.toString();
  }
  if (Array.isArray(v) || v instanceof Uint8Array) return "[" + Array.from(v as ArrayLike<unknown>, formatValue).join(" ") + "]";
  const entries = mapEntries(v);
  if (entries) return "map[" + entries.map(([k, x]) => `${formatValue(k)}:${formatValue(x)}`).join(" ") + "]";
  // A class instance is printed like a Go struct: its field values in braces.
  return "{" + Object.values(v as object).map(formatValue).join(" ") + "}";
}

/** fmt.Sprint: operands separated by a space when neither side is a string. */
export function sprint(args: readonly unknown[]): string {
  let out = "";
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== "string" && typeof args[i - 1] !== "string") out += " ";
    out += formatValue(a);
  });
  return out;
}

/** fmt.Sprintln: operands always separated by a space, newline appended. */
export function sprintln(args: readonly unknown[]): string {
  return args.map(formatValue).join(" ") + "\n";
}

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width: number;
  prec: number;
}

function pad(s: string, f: Spec): string {
  const n = [...s].length;
  if (f.width <= n) return s;
  const fill = f.width - n;
  if (f.minus) return s + " ".repeat(fill);
  return (f.zero ? "0" : " ").repeat(fill) + s;
}

/** Pads a signed number: zeros go between the sign and the digits. */
function padNumber(sign: string, body: string, f: Spec): string {
  if (f.zero && !f.minus && f.width > 0) {
    const fill = f.width - sign.length - body.length;
    if (fill > 0) return sign + "0".repeat(fill) + body;
    return sign + body;
  }
  return pad(sign + body, { ...f, zero: false });
}

function badVerb(verb: string, arg: unknown): string {
  if (isNil(arg)) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(arg)}=${formatValue(arg)})`;
}

function signOf(neg: boolean, f: Spec): string {
  if (neg) return "-";
  return f.plus ? "+" : f.space ? " " : "";
}

function formatIntVerb(n: number, verb: string, f: Spec): string | null {
  const neg = n < 0;
  const abs = Math.abs(n);
  const big = BigInt(abs);
  let body: string;
  let prefix = "";
  switch (verb) {
    case "v":
    case "d":
      body = big.toString();
      break;
    case "b":
      body = big.toString(2);
      break;
    case "o":
      body = big.toString(8);
      if (f.sharp) prefix = "0";
      break;
    case "O":
      body = big.toString(8);
      prefix = "0o";
      break;
    case "x":
      body = big.toString(16);
      if (f.sharp) prefix = "0x";
      break;
    case "X":
      body = big.toString(16).toUpperCase();
      if (f.sharp) prefix = "0X";
      break;
    case "c":
      return pad(abs <= 0x10ffff ? String.fromCodePoint(abs) : "\ufffd", f);
    case "q":
      return pad(abs <= 0x10ffff ? "'" + goQuote(String.fromCodePoint(abs)).slice(1, -1).replace(/\\"/g, '"') + "'" : "'\ufffd'", f);
    case "U":
      return pad("U+" + big.toString(16).toUpperCase().padStart(4, "0"), f);
    default:
      return null;
  }
  if (f.prec >= 0) body = body.padStart(f.prec, "0");
  return padNumber(signOf(neg, f), prefix + body, f.prec >= 0 ? { ...f, zero: false } : f);
}

function formatFloatVerb(x: number, verb: string, f: Spec): string | null {
  const neg = x < 0 || Object.is(x, -0);
  const abs = Math.abs(x);
  let body: string;
  switch (verb) {
    case "v":
    case "g":
    case "G":
      body = formatFloatG(abs, f.prec, verb === "G");
      break;
    case "e":
    case "E":
      body = formatFloatE(abs, f.prec < 0 ? 6 : f.prec, verb === "E");
      break;
    case "f":
    case "F":
      body = formatFloatF(abs, f.prec < 0 ? 6 : f.prec);
      break;
    default:
      return null;
  }
  if (Number.isNaN(x)) return pad(body, { ...f, zero: false });
  return padNumber(signOf(neg, f), body.replace(/^\+/, ""), f);
}

function formatStringVerb(s: string, verb: string, f: Spec): string | null {
  switch (verb) {
    case "v":
    case "s":
      return pad(f.prec >= 0 ? [...s].slice(0, f.prec).join("") : s, f);
    case "q": {
      const t = f.prec >= 0 ? [...s].slice(0, f.prec).join("") : s;
      if (f.sharp && !/[`\p{C}]/u.test(t.replace(/\t/g, ""))) return pad("`" + t + "`", f);
      return pad(goQuote(t), f);
    }
    case "x":
    case "X": {
      let hex = Buffer.from(s, "utf8").toString("hex");
      if (verb === "X") hex = hex.toUpperCase();
      return pad(hex, f);
    }
    default:
      return null;
  }
}

function formatArg(arg: unknown, verb: string, f: Spec): string {
  if (verb === "T") return pad(goTypeName(arg), f);
  if (isNil(arg)) return verb === "v" ? pad("<nil>", f) : badVerb(verb, arg);
  const str = stringerOf(arg);
  if (str && "vsqxX".includes(verb)) return formatStringVerb(String(str()), verb, f) ?? badVerb(verb, arg);
  let out: string | null = null;
  switch (typeof arg) {
    case "boolean":
      out = verb === "v" || verb === "t" ? pad(String(arg), f) : null;
      break;
    case "number":
      // JavaScript cannot tell 2 from 2.0, so integers also accept the float verbs.
      out = isGoInt(arg) ? (formatIntVerb(arg, verb, f) ?? formatFloatVerb(arg, verb, f)) : formatFloatVerb(arg, verb, f);
      break;
    case "bigint":
      out = formatIntVerb(Number(arg), verb, f);
      break;
    case "string":
      out = formatStringVerb(arg, verb, f);
      break;
    case "function":
      out = verb === "v" || verb === "p" ? pad("<func>", f) : null;
      break;
    default: {
      if (Array.isArray(arg) || arg instanceof Uint8Array) {
        out = "[" + Array.from(arg as ArrayLike<unknown>, (x) => formatArg(x, verb, f)).join(" ") + "]";
      } else if (arg instanceof Map || isPlainObject(arg)) {
        out = "map[" + mapEntries(arg)!.map(([k, x]) => `${formatArg(k, verb, f)}:${formatArg(x, verb, f)}`).join(" ") + "]";
      } else {
        out = "{" + Object.values(arg as object).map((x) => formatArg(x, verb, f)).join(" ") + "}";
      }
    }
  }
  return out ?? badVerb(verb, arg);
}

/** Go's fmt refuses widths and precisions beyond a million, so one verb cannot pad without bound. */
const tooLarge = (n: number): boolean => n > 1e6 || n < -1e6;

/** fmt's parsenum: digits at `i`; a number that grows too large consumes the rest of the format. */
function parseNum(format: string, i: number): { num: number; present: boolean; next: number } {
  let num = 0;
  let present = false;
  for (; i < format.length && format[i]! >= "0" && format[i]! <= "9"; i++) {
    if (tooLarge(num)) return { num: 0, present: false, next: format.length };
    num = num * 10 + Number(format[i]);
    present = true;
  }
  return { num, present, next: i };
}

/** fmt.Sprintf with the common verbs (%v %s %d %q %t %f %e %g %x %X %o %b %c %U %T), flags, width and precision. */
export function sprintf(format: string, args: readonly unknown[]): string {
  let out = "";
  let argi = 0;
  /** fmt's intFromArg: a `*` width or precision; not an int, or too large, is not present. */
  const takeInt = (): { num: number; present: boolean } => {
    if (argi >= args.length) return { num: 0, present: false };
    const a = args[argi++];
    if (typeof a !== "number" || !isGoInt(a) || tooLarge(a)) return { num: 0, present: false };
    return { num: a, present: true };
  };
  for (let i = 0; i < format.length; ) {
    if (format[i] !== "%") {
      const j = format.indexOf("%", i);
      const end = j < 0 ? format.length : j;
      out += format.slice(i, end);
      i = end;
      continue;
    }
    i++;
    const f: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false, width: -1, prec: -1 };
    flags: for (; i < format.length; i++) {
      switch (format[i]) {
        case "-":
          f.minus = true;
          f.zero = false;
          break;
        case "+":
          f.plus = true;
          break;
        case "#":
          f.sharp = true;
          break;
        case " ":
          f.space = true;
          break;
        case "0":
          f.zero = !f.minus;
          break;
        default:
          break flags;
      }
    }
    if (format[i] === "*") {
      i++;
      const w = takeInt();
      if (!w.present) out += "%!(BADWIDTH)";
      else f.width = w.num;
      if (f.width < 0) {
        f.minus = true;
        f.zero = false;
        f.width = -f.width;
      }
    } else {
      const w = parseNum(format, i);
      if (w.present) f.width = w.num;
      i = w.next;
    }
    if (i + 1 < format.length && format[i] === ".") {
      i++;
      if (format[i] === "*") {
        i++;
        const p = takeInt();
        if (p.present && p.num >= 0) f.prec = p.num;
        else out += "%!(BADPREC)";
      } else {
        const p = parseNum(format, i);
        f.prec = p.num;
        i = p.next;
      }
    }
    if (i >= format.length) {
      out += "%!(NOVERB)";
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === "%") {
      out += "%";
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    out += formatArg(args[argi++], verb, f);
  }
  if (argi < args.length) {
    out += "%!(EXTRA " + args.slice(argi).map((a) => (isNil(a) ? "<nil>" : `${goTypeName(a)}=${formatValue(a)}`)).join(", ") + ")";
  }
  return out;
}
