// Model options: the PARAMETER table, Ollama's string → typed conversion used by the Modelfile
// (FormatParams), and the JSON → options conversion used at inference time (FromMap)
// (docs/daemon.md, "Modelfile" and "Option precedence").

import { parseFloat32Decimal, toFloat32Number } from "../gojson.ts";
import { goQuote } from "./gotext.ts";
import type { ModelfileCommand } from "./parser.ts";

export type ParameterType = "int" | "float" | "bool" | "string[]";

/** Every option a Modelfile PARAMETER or a request's `options` may set, with its type. */
export const PARAMETER_TYPES: Readonly<Record<string, ParameterType>> = Object.freeze({
  num_ctx: "int",
  num_batch: "int",
  num_gpu: "int",
  main_gpu: "int",
  use_mmap: "bool",
  num_thread: "int",
  draft_num_predict: "int",
  num_keep: "int",
  seed: "int",
  num_predict: "int",
  top_k: "int",
  top_p: "float",
  min_p: "float",
  typical_p: "float",
  repeat_last_n: "int",
  temperature: "float",
  repeat_penalty: "float",
  presence_penalty: "float",
  frequency_penalty: "float",
  stop: "string[]",
});

/** Names the Modelfile path skips with `warning: parameter <name> is deprecated`. */
export const DEPRECATED_PARAMETERS: readonly string[] = Object.freeze([
  "penalize_newline",
  "low_vram",
  "f16_kv",
  "logits_all",
  "vocab_only",
  "use_mlock",
  "mirostat",
  "mirostat_tau",
  "mirostat_eta",
]);

export interface ModelOptions {
  num_ctx: number;
  num_batch: number;
  num_gpu: number;
  /** Unset unless given. */
  main_gpu?: number;
  /** Unset unless given. */
  use_mmap?: boolean;
  num_thread: number;
  draft_num_predict: number;
  num_keep: number;
  seed: number;
  num_predict: number;
  top_k: number;
  top_p: number;
  min_p: number;
  typical_p: number;
  repeat_last_n: number;
  temperature: number;
  repeat_penalty: number;
  presence_penalty: number;
  frequency_penalty: number;
  stop: string[];
}

/**
 * Ollama's DefaultOptions. `num_ctx` really depends on OLLAMA_CONTEXT_LENGTH or the VRAM tier;
 * 4096 is the smallest tier and the daemon replaces it.
 */
export const DEFAULT_OPTIONS: Readonly<ModelOptions> = Object.freeze({
  num_ctx: 4096,
  num_batch: 512,
  num_gpu: -1,
  num_thread: 0,
  draft_num_predict: 4,
  num_keep: 4,
  seed: -1,
  num_predict: -1,
  top_k: 40,
  top_p: 0.9,
  min_p: 0,
  typical_p: 1,
  repeat_last_n: 64,
  temperature: 0.8,
  repeat_penalty: 1,
  presence_penalty: 0,
  frequency_penalty: 0,
  stop: [],
});

/** The type of a known option; undefined for anything else (including inherited keys like "constructor"). */
export function parameterType(name: string): ParameterType | undefined {
  return Object.hasOwn(PARAMETER_TYPES, name) ? PARAMETER_TYPES[name] : undefined;
}

export function isDeprecatedParameter(name: string): boolean {
  return DEPRECATED_PARAMETERS.includes(name);
}

/** A PARAMETER value that Ollama's FormatParams would reject. */
export class ParameterError extends Error {
  /** Ollama's exact text, e.g. `invalid int value [4.5]` or `unknown parameter 'numa'`. */
  readonly reason: string;
  readonly parameter: string;
  readonly values: readonly string[];
  /** The Modelfile line, when known; the message then starts with `(line N): `. */
  readonly line: number | undefined;

  constructor(reason: string, parameter: string, values: readonly string[], line?: number) {
    super(line === undefined ? reason : `(line ${line}): ${reason}`);
    this.name = "ParameterError";
    this.reason = reason;
    this.parameter = parameter;
    this.values = values;
    this.line = line;
  }

  /** The same error, now naming the Modelfile line it came from. */
  atLine(line: number): ParameterError {
    return new ParameterError(this.reason, this.parameter, this.values, line);
  }
}

/** Go's %v of a []string. */
function goList(values: readonly string[]): string {
  return `[${values.join(" ")}]`;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** strconv.ParseInt(s, 10, 64). A number when it is exactly representable, else a bigint. */
export function parseGoInt(s: string): number | bigint | undefined {
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = BigInt(s);
  if (n < INT64_MIN || n > INT64_MAX) return undefined;
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

/**
 * strconv.ParseFloat(s, 32) limited to finite results, as the JS number whose String() is the
 * float32's shortest decimal. Go also accepts inf/nan, but such values cannot be written into
 * the JSON request afterwards, so they are rejected here.
 */
export function parseGoFloat32(s: string): number | undefined {
  let value = parseFloat32Decimal(s);
  if (value === undefined) {
    const hex = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?[pP]([+-]?\d+)$/.exec(s);
    if (hex === null || (hex[2] === "" && (hex[3] ?? "") === "")) return undefined;
    const frac = hex[3] ?? "";
    const mantissa = parseInt((hex[2] || "0") + frac, 16);
    value = Math.fround(mantissa * 2 ** (Number(hex[4]) - 4 * frac.length)) * (hex[1] === "-" ? -1 : 1);
  }
  return Number.isFinite(value) ? toFloat32Number(value) : undefined;
}

/**
 * Ollama's FormatParams: converts PARAMETER strings to typed values. Floats come back as the
 * float32-shortest JS number, ints as numbers (bigint beyond 2^53), `stop` as the whole list.
 * Throws ParameterError with Ollama's text.
 */
export function formatParams(values: Record<string, string[]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, vals] of Object.entries(values)) {
    const type = parameterType(key);
    if (type === undefined) throw new ParameterError(`unknown parameter '${key}'`, key, vals);
    const first = vals[0] ?? "";
    switch (type) {
      case "float": {
        const v = parseGoFloat32(first);
        if (v === undefined) throw new ParameterError(`invalid float value ${goList(vals)}`, key, vals);
        out[key] = v;
        break;
      }
      case "int": {
        const v = parseGoInt(first);
        if (v === undefined) throw new ParameterError(`invalid int value ${goList(vals)}`, key, vals);
        out[key] = v;
        break;
      }
      case "bool": {
        const v = parseGoBool(first);
        if (v === undefined) throw new ParameterError(`invalid bool value ${goList(vals)}`, key, vals);
        out[key] = v;
        break;
      }
      case "string[]":
        out[key] = [...vals];
        break;
    }
  }
  return out;
}

export interface DeprecatedParameterWarning {
  parameter: string;
  line: number;
  /** Ollama's text: `parameter <name> is deprecated`. */
  message: string;
}

const NON_PARAMETER_COMMANDS = new Set(["model", "license", "template", "system", "adapter", "draft", "renderer", "parser", "requires", "message"]);

/**
 * The `parameters` of a create request built from parsed Modelfile commands, as Ollama's CLI
 * builds them (docs/daemon.md, "Modelfile"): deprecated names are skipped with a warning, repeated `stop` values
 * accumulate, other repeats overwrite. Errors name the Modelfile line.
 */
export function parametersFromCommands(commands: readonly ModelfileCommand[]): {
  parameters: Record<string, unknown>;
  warnings: DeprecatedParameterWarning[];
} {
  const parameters: Record<string, unknown> = {};
  const warnings: DeprecatedParameterWarning[] = [];
  for (const cmd of commands) {
    if (NON_PARAMETER_COMMANDS.has(cmd.name)) continue;
    if (isDeprecatedParameter(cmd.name)) {
      warnings.push({ parameter: cmd.name, line: cmd.line, message: `parameter ${cmd.name} is deprecated` });
      continue;
    }
    let typed: Record<string, unknown>;
    try {
      typed = formatParams({ [cmd.name]: [cmd.args] });
    } catch (err) {
      throw err instanceof ParameterError ? err.atLine(cmd.line) : err;
    }
    for (const [k, v] of Object.entries(typed)) {
      const prev = parameters[k];
      parameters[k] = Array.isArray(prev) && Array.isArray(v) ? [...(prev as unknown[]), ...v] : v;
    }
  }
  return { parameters, warnings };
}

/** A request/model option of the wrong JSON type (Ollama answers these with a 500). */
export class OptionError extends Error {
  readonly option: string;
  constructor(option: string, expected: string) {
    super(`option ${goQuote(option)} must be of ${expected}`);
    this.name = "OptionError";
    this.option = option;
  }
}

/**
 * Ollama's Options.FromMap: applies JSON option values (from a params layer or a request) over
 * `base`. Unknown and deprecated keys are ignored and reported in `warnings`, nulls are skipped,
 * ints accept any JSON number (truncated), floats need a number, bools a boolean, `stop` an
 * array of strings. Throws OptionError with Ollama's text for a wrong type.
 */
export function optionsFromMap(
  map: Readonly<Record<string, unknown>>,
  base: Readonly<ModelOptions> = DEFAULT_OPTIONS,
): { options: ModelOptions; warnings: string[] } {
  const options: ModelOptions = { ...base, stop: [...base.stop] };
  const target = options as unknown as Record<string, unknown>;
  const warnings: string[] = [];
  for (const [key, val] of Object.entries(map)) {
    const type = parameterType(key);
    if (type === undefined) {
      warnings.push(`invalid option provided: ${key}`);
      continue;
    }
    if (val === null || val === undefined) continue;
    switch (type) {
      case "int":
        if (typeof val === "number" && Number.isFinite(val)) target[key] = Math.trunc(val);
        else if (typeof val === "bigint") target[key] = Number(val);
        else throw new OptionError(key, "type integer");
        break;
      case "float":
        if (typeof val !== "number") throw new OptionError(key, "type float32");
        target[key] = toFloat32Number(val);
        break;
      case "bool":
        if (typeof val !== "boolean") throw new OptionError(key, "type boolean");
        target[key] = val;
        break;
      case "string[]": {
        if (!Array.isArray(val)) throw new OptionError(key, "type array");
        const list: string[] = [];
        for (const item of val) {
          if (typeof item !== "string") throw new OptionError(key, "an array of strings");
          list.push(item);
        }
        target[key] = list;
        break;
      }
    }
  }
  return { options, warnings };
}
