// A pickle reader for PyTorch state dicts and nothing else. It interprets the opcode stream
// without ever calling Python code: the only "callables" are a handful of names a state dict
// needs, each implemented here as a data constructor. Any other opcode or global is refused with
// an error that names it, so a checkpoint cannot smuggle in code to run.

import { ConvertError } from "./errors.ts";

/** A storage reference as torch.save writes it (persistent id ('storage', type, key, location, numel)). */
export interface PickledStorage {
  kind: "storage";
  /** e.g. "F32", "F16", "BF16", or another torch type's name such as "I64". */
  dtype: string;
  key: string;
  numel: number;
}

/** A tensor view onto a storage, as torch._utils._rebuild_tensor_v2 describes it. */
export interface PickledTensor {
  kind: "tensor";
  storage: PickledStorage;
  /** In elements. */
  storageOffset: number;
  shape: number[];
  stride: number[];
}

class Tuple {
  constructor(readonly items: PyValue[]) {}
}
class Global {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}
type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | Tuple | Map<PyValue, PyValue> | Global | PickledStorage | PickledTensor;

const STORAGE_TYPES: Record<string, string> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

const CALLABLES = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_parameter",
]);

export const ALLOWED_GLOBALS: readonly string[] = [...CALLABLES, ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`)];

const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT", 0x4a: "BININT",
  0x4b: "BININT1", 0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE", 0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE",
  0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND",
  0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET",
  0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT", 0x71: "BINPUT",
  0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT",
  0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2",
  0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4", 0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x8f: "EMPTY_SET",
  0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
  0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
};

const MARK = Symbol("mark");
/** State dicts nest a wrapper or two; far deeper nesting is not a checkpoint. */
const MAX_DICT_DEPTH = 32;
type StackItem = PyValue | typeof MARK;

/**
 * Interprets a state-dict pickle and returns its tensors by name. `file` names the checkpoint in
 * messages. Nested dicts (e.g. {"state_dict": {...}}) are flattened with dotted names.
 */
export function loadStateDict(data: Uint8Array, file: string): Map<string, PickledTensor> {
  const root = unpickle(data, file);
  const out = new Map<string, PickledTensor>();
  // The memo lets a pickle share one dict between many places, even inside itself: each dict is
  // walked once, so cycles end and shared dicts cannot multiply the work exponentially.
  const seen = new Set<Map<PyValue, PyValue>>();
  const walk = (v: PyValue, prefix: string, depth: number): void => {
    if (v instanceof Map) {
      if (seen.has(v)) return;
      seen.add(v);
      if (depth >= MAX_DICT_DEPTH) throw new ConvertError(`${file}: the pickle nests dicts more than ${MAX_DICT_DEPTH} deep; a state dict is flat`);
      for (const [k, x] of v) {
        if (typeof k !== "string") continue;
        const name = prefix ? `${prefix}.${k}` : k;
        // Wrappers that trainers write around the weights are not part of tensor names.
        walk(x, !prefix && (k === "state_dict" || k === "model" || k === "module") ? "" : name, depth + 1);
      }
    } else if (v && typeof v === "object" && "kind" in v && v.kind === "tensor") {
      out.set(prefix, v);
    }
  };
  walk(root, "", 0);
  if (out.size === 0) throw new ConvertError(`${file}: the pickle holds no tensors; expected a state dict`);
  return out;
}

function unpickle(data: Uint8Array, file: string): PyValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const stack: StackItem[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;
  let opAt = 0;
  const fail = (problem: string): never => {
    throw new ConvertError(`${file}: pickle byte ${opAt}: ${problem}`);
  };
  const need = (n: number): void => {
    if (pos + n > data.length) fail(`truncated (needs ${n} more bytes)`);
  };
  const u8 = (): number => (need(1), data[pos++]!);
  const u16 = (): number => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length)) fail(`length ${v} exceeds the pickle`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => (need(n), (pos += n), data.subarray(pos - n, pos));
  const text = (n: number): string => {
    const b = bytes(n);
    try {
      return decoder.decode(b);
    } catch {
      return fail("invalid UTF-8 in a string");
    }
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail("unterminated line");
    const s = new TextDecoder("latin1").decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) return fail("stack underflow");
    if (v === MARK) return fail("unexpected MARK");
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail("stack underflow");
    return v;
  };
  const popMark = (): PyValue[] => {
    const items: PyValue[] = [];
    for (;;) {
      const v = stack.pop();
      if (v === undefined) return fail("MARK missing");
      if (v === MARK) return items.reverse();
      items.push(v);
    }
  };
  const global = (module: string, name: string): Global => {
    const g = new Global(module, name);
    if (!CALLABLES.has(g.qualified) && !(module === "torch" && name in STORAGE_TYPES)) {
      fail(`refusing pickle global "${g.qualified}": only the names a state dict needs are allowed (${ALLOWED_GLOBALS.join(", ")})`);
    }
    return g;
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (!(target instanceof Map)) return fail("SETITEM(S) on something that is not a dict");
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i]!, items[i + 1]!);
  };
  const intArg = (v: PyValue | undefined, what: string): number => {
    if (typeof v === "bigint" && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    // Offsets, sizes and strides of a state dict are never negative.
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return fail(`${what} is not a non-negative integer`);
    return v;
  };
  const intTuple = (v: PyValue | undefined, what: string): number[] => {
    if (!(v instanceof Tuple)) return fail(`${what} is not a tuple`);
    return v.items.map((x, i) => intArg(x, `${what}[${i}]`));
  };
  const reduce = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof Global) || !(args instanceof Tuple)) return fail("REDUCE needs a permitted global and an argument tuple");
    const a = args.items;
    switch (fn.qualified) {
      case "collections.OrderedDict":
        if (a.length !== 0) fail("collections.OrderedDict is only accepted without arguments");
        return new Map();
      case "torch._utils._rebuild_tensor":
      case "torch._utils._rebuild_tensor_v2": {
        const storage = a[0];
        if (!storage || typeof storage !== "object" || !("kind" in storage) || storage.kind !== "storage") return fail(`${fn.qualified}: first argument is not a storage`);
        return {
          kind: "tensor",
          storage,
          storageOffset: intArg(a[1], "storage offset"),
          shape: intTuple(a[2], "size"),
          stride: intTuple(a[3], "stride"),
        };
      }
      case "torch._utils._rebuild_parameter": {
        const t = a[0];
        if (!t || typeof t !== "object" || !("kind" in t) || t.kind !== "tensor") return fail("torch._utils._rebuild_parameter: first argument is not a tensor");
        return t;
      }
      default:
        return fail(`refusing to call "${fn.qualified}"`);
    }
  };

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: framing is only a read-ahead hint
      case 0x2e: return pop(); // STOP
      case 0x28: stack.push(MARK); break;
      case 0x7d: stack.push(new Map()); break;
      case 0x5d: stack.push([]); break;
      case 0x29: stack.push(new Tuple([])); break;
      case 0x74: stack.push(new Tuple(popMark())); break;
      case 0x85: stack.push(new Tuple([pop()])); break;
      case 0x86: { const b = pop(); const a = pop(); stack.push(new Tuple([a, b])); break; }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new Tuple([a, b, c])); break; }
      case 0x4a: need(4); stack.push(view.getInt32(pos, true)); pos += 4; break;
      case 0x4b: stack.push(u8()); break;
      case 0x4d: stack.push(u16()); break;
      case 0x8a: {
        const n = u8();
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && (b[n - 1]! & 0x80) !== 0) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x4e: stack.push(null); break;
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break;
      case 0x58: stack.push(text(u32())); break;
      case 0x8c: stack.push(text(u8())); break;
      case 0x8d: stack.push(text(u64())); break;
      case 0x55: stack.push(new TextDecoder("latin1").decode(bytes(u8()))); break;
      case 0x54: stack.push(new TextDecoder("latin1").decode(bytes(u32()))); break;
      case 0x43: stack.push(bytes(u8())); break;
      case 0x42: stack.push(bytes(u32())); break;
      case 0x71: memo.set(u8(), top()); break;
      case 0x72: memo.set(u32(), top()); break;
      case 0x94: memo.set(memo.size, top()); break;
      case 0x68:
      case 0x6a: {
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo entry ${k} is not defined`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; }
      case 0x75: { const items = popMark(); setItems(top(), items); break; }
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail("APPEND to something that is not a list"); (l as PyValue[]).push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail("APPENDS to something that is not a list"); for (const x of items) (l as PyValue[]).push(x); break; }
      case 0x30: pop(); break;
      case 0x31: popMark(); break;
      case 0x32: stack.push(top()); break;
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; }
      case 0x93: {
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(reduce(fn, args)); break; }
      case 0x62: {
        // BUILD sets attributes; on a state dict that is only `_metadata`, which the weights do not need.
        pop();
        const obj = top();
        if (!(obj instanceof Map) && !(obj && typeof obj === "object" && "kind" in obj)) fail("BUILD on an object that is not a dict or tensor");
        break;
      }
      case 0x51: {
        const pid = pop();
        if (!(pid instanceof Tuple) || pid.items[0] !== "storage") return fail("persistent id is not a ('storage', …) tuple");
        const [, type, key, , numel] = pid.items;
        if (!(type instanceof Global) || !(type.name in STORAGE_TYPES)) return fail("persistent id names no storage type");
        if (typeof key !== "string") return fail("storage key is not a string");
        stack.push({ kind: "storage", dtype: STORAGE_TYPES[type.name]!, key, numel: intArg(numel ?? null, "storage size") });
        break;
      }
      default:
        return fail(`refusing pickle opcode ${OPCODE_NAMES[op] ?? "unknown"} (0x${op.toString(16).padStart(2, "0")}): a state dict does not need it`);
    }
  }
}
