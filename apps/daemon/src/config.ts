// The daemon's configuration, read from the environment once. Each CORRAL_* variable falls back
// to its OLLAMA_* twin so that an existing Ollama setup (models directory, host) works as it is.

import { isIP } from "node:net";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { registryHost } from "@corral/shared/name";
import { parseGoDuration } from "./runner/durations.ts";

/** Reads a variable the way Ollama does: trimmed, then stripped of surrounding quotes. */
function envValue(env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  return envSetting(env, ...names)?.value;
}

/** The first of `names` that is set, with its value read as envValue does. */
function envSetting(env: NodeJS.ProcessEnv, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined) continue;
    const v = raw.trim().replace(/^["']+|["']+$/g, "");
    if (v !== "") return { name, value: v };
  }
  return undefined;
}

/** A setting that cannot be used as it is: the CLI shows its message alone, as one line. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface HostAddress {
  scheme: "http" | "https";
  host: string;
  port: number;
  /** Path prefix for the client (OLLAMA_HOST may carry one). */
  path: string;
}

/** A host name as a URL and getaddrinfo take it, or an IP address. */
const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;

/**
 * Parses a host setting with Ollama's syntax: scheme optional, default port 11434. Where Ollama
 * falls back to a default for a port or host it cannot read, this refuses, naming the variable: a
 * daemon listening, or a CLI connecting, somewhere else than the setting says is a harder problem
 * to find than the typo.
 */
export function parseHost(value: string | undefined, variable = "CORRAL_HOST"): HostAddress {
  const original = (value ?? "").trim();
  const bad = (problem: string): ConfigError =>
    new ConfigError(`${variable}: ${JSON.stringify(original)} ${problem}; set ${variable} to [scheme://]host[:port], e.g. 127.0.0.1:11434`);
  let v = original;
  let scheme: "http" | "https" = "http";
  let defaultPort = 11434;
  const sep = v.indexOf("://");
  if (sep >= 0) {
    const s = v.slice(0, sep).toLowerCase();
    v = v.slice(sep + 3);
    if (s === "https") {
      scheme = "https";
      defaultPort = 443;
    } else if (s === "http") {
      defaultPort = 80;
    } else {
      throw bad(`has scheme ${JSON.stringify(s)}, not http or https`);
    }
  }
  let path = "";
  const slash = v.indexOf("/");
  if (slash >= 0) {
    path = v.slice(slash);
    v = v.slice(0, slash);
  }
  let host = v;
  let port = defaultPort;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(v);
  const m = bracketed ?? /^([^:]*):([^:]*)$/.exec(v);
  if (m) {
    host = m[1] ?? "";
    const p = m[2];
    if (p !== undefined && p !== "") {
      if (!/^\d+$/.test(p)) throw bad(`has port ${JSON.stringify(p)}, not a number`);
      const n = Number(p);
      if (n > 65535) throw bad(`has port ${n}, out of range (0-65535)`);
      port = n;
    }
  }
  if (bracketed ? isIP(host) !== 6 : host !== "" && isIP(host) === 0 && !HOST_NAME.test(host)) {
    throw bad(`is not a valid host: ${JSON.stringify(host)} is neither a host name nor an IP address`);
  }
  if (host === "") host = "127.0.0.1";
  return { scheme, host, port, path };
}

/** The base URL the CLI connects to; an unspecified bind address means loopback. */
export function clientBaseURL(addr: HostAddress): string {
  let host = addr.host;
  if (host === "0.0.0.0") host = "127.0.0.1";
  if (host === "::") host = "::1";
  const h = host.includes(":") ? `[${host}]` : host;
  return `${addr.scheme}://${h}:${addr.port}${addr.path.replace(/\/+$/, "")}`;
}

export interface DaemonConfig {
  /** Root of the model store: manifests/ and blobs/ live under it. */
  modelsDir: string;
  /** Where the daemon keeps its identity and history (~/.corral). */
  homeDir: string;
  host: HostAddress;
  /** Keep unused blobs at start-up and after create/delete. */
  noPrune: boolean;
  /** Origin patterns of the web pages allowed to call the API (see api/origin-check.ts). */
  origins: string[];
  /** CORRAL_REGISTRY as a host (`host[:port]`), for names typed without one; undefined when unset. */
  registry: string | undefined;
  /** Default `num_ctx`: CORRAL_CONTEXT_LENGTH, else OLLAMA_CONTEXT_LENGTH, else 4096. */
  contextLength: number;
  /** Requests one loaded model serves at once: CORRAL_NUM_PARALLEL, else OLLAMA_NUM_PARALLEL, else 1. */
  numParallel: number;
  /** Models loaded at once: CORRAL_MAX_LOADED_MODELS, else OLLAMA_MAX_LOADED_MODELS, else 3. */
  maxLoadedModels: number;
  /**
   * Default keep-alive in milliseconds, negative for forever: CORRAL_KEEP_ALIVE, else
   * OLLAMA_KEEP_ALIVE, else 5m. Read when first asked for, so that a value only `serve` uses
   * cannot stop the other commands.
   */
  readonly keepAliveMs: number;
  /** llama.cpp threads (CORRAL_NUM_THREADS); undefined: one per core, one for tiny models. */
  numThreads: number | undefined;
  /** Streams per download (CORRAL_TRANSFER_CONCURRENCY); undefined: adaptive (registry-client/stream-ramp.ts). */
  transferConcurrency: number | undefined;
  /** Smallest upload chunk and download range in bytes (CORRAL_TRANSFER_PART_MIN); undefined: the defaults. */
  transferPartMin: number | undefined;
  /**
   * How long a part of a transfer may go without a byte before it is retried (seconds in
   * CORRAL_TRANSFER_STALL_TIMEOUT, fractions allowed; Ollama's 30 s by default).
   */
  transferStallMs: number;
  /** Debug log of the scheduler and runner on stderr (log.ts): CORRAL_DEBUG, else OLLAMA_DEBUG. */
  debug: boolean;
  /**
   * Which llama.cpp backend runs models (CORRAL_GPU, docs/daemon.md, "GPUs"): `auto` by default.
   * Read when first asked for, as keepAliveMs is, so that a bad value stops only `serve`.
   */
  readonly gpu: GpuSetting;
  /**
   * What a pull does about publisher signatures (CORRAL_VERIFY, docs/protocol.md, "Model
   * signatures"): `warn` by default. Read when first asked for, so that a bad value stops only `serve`.
   */
  readonly verify: VerifyPolicy;
}

/** The CORRAL_VERIFY policies: fetch nothing; verify and warn about unsigned models; refuse them. */
export const VERIFY_POLICIES = ["off", "warn", "require"] as const;
export type VerifyPolicy = (typeof VERIFY_POLICIES)[number];

/** Parses CORRAL_VERIFY (case-insensitive); unset or empty means `warn`. */
export function parseVerifyPolicy(value: string | undefined): VerifyPolicy {
  if (value === undefined || value === "") return "warn";
  const v = value.toLowerCase();
  const known = VERIFY_POLICIES.find((s) => s === v);
  if (known) return known;
  throw new ConfigError(`CORRAL_VERIFY: ${JSON.stringify(value.slice(0, 40))} is not a policy; set CORRAL_VERIFY to one of ${VERIFY_POLICIES.join(", ")}`);
}

/** The backends CORRAL_GPU may name; `auto` is the best one this machine can load. */
export const GPU_SETTINGS = ["auto", "cuda", "vulkan", "cpu"] as const;
export type GpuSetting = (typeof GPU_SETTINGS)[number];

/** Parses CORRAL_GPU (case-insensitive); unset means `auto`. */
export function parseGpuSetting(value: string | undefined): GpuSetting {
  if (value === undefined) return "auto";
  const v = value.toLowerCase();
  const known = GPU_SETTINGS.find((s) => s === v);
  if (known) return known;
  throw new ConfigError(`CORRAL_GPU: ${JSON.stringify(value)} is not a backend; set CORRAL_GPU to one of ${GPU_SETTINGS.join(", ")}`);
}

/** CORRAL_HOST, else OLLAMA_HOST, else the default; an error names the one that is wrong. */
function hostSetting(env: NodeJS.ProcessEnv): HostAddress {
  const setting = envSetting(env, "CORRAL_HOST", "OLLAMA_HOST");
  return parseHost(setting?.value, setting?.name);
}

/** A positive integer setting; anything else (absent, zero, not a number) means the default. */
function positiveInt(env: NodeJS.ProcessEnv, ...names: string[]): number | undefined {
  const n = Number(envValue(env, ...names));
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** A positive number of bytes; anything else means the default. */
function positiveNumber(env: NodeJS.ProcessEnv, ...names: string[]): number | undefined {
  const n = Number(envValue(env, ...names));
  return n > 0 ? n : undefined;
}

/** A keep-alive setting: whole seconds or a Go duration; negative means forever (-1). */
function keepAliveSetting(env: NodeJS.ProcessEnv): number {
  const setting = envSetting(env, "CORRAL_KEEP_ALIVE", "OLLAMA_KEEP_ALIVE");
  if (setting === undefined) return 5 * 60_000;
  const v = setting.value;
  if (/^-?\d+$/.test(v)) return Number(v) < 0 ? -1 : Number(v) * 1000;
  let ms: number;
  try {
    ms = parseGoDuration(v);
  } catch (e) {
    throw new ConfigError(`${setting.name}: ${(e as Error).message}; set it to a number of seconds or a duration like 5m`);
  }
  return ms < 0 ? -1 : ms;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const home = env["HOME"] || homedir();
  const homeDir = resolve(envValue(env, "CORRAL_HOME") ?? join(home, ".corral"));
  const models = envValue(env, "CORRAL_MODELS", "OLLAMA_MODELS");
  let keepAliveMs: number | undefined;
  let gpu: GpuSetting | undefined;
  let verify: VerifyPolicy | undefined;
  return {
    modelsDir: resolve(models ?? join(homeDir, "models")),
    homeDir,
    host: hostSetting(env),
    noPrune: parseBool(envValue(env, "CORRAL_NOPRUNE", "OLLAMA_NOPRUNE")),
    origins: allowedOrigins(envValue(env, "CORRAL_ORIGINS", "OLLAMA_ORIGINS")),
    registry: registryHost(envValue(env, "CORRAL_REGISTRY")),
    contextLength: positiveInt(env, "CORRAL_CONTEXT_LENGTH", "OLLAMA_CONTEXT_LENGTH") ?? 4096,
    numParallel: positiveInt(env, "CORRAL_NUM_PARALLEL", "OLLAMA_NUM_PARALLEL") ?? 1,
    maxLoadedModels: positiveInt(env, "CORRAL_MAX_LOADED_MODELS", "OLLAMA_MAX_LOADED_MODELS") ?? 3,
    get keepAliveMs(): number {
      return (keepAliveMs ??= keepAliveSetting(env));
    },
    numThreads: positiveInt(env, "CORRAL_NUM_THREADS"),
    transferConcurrency: positiveInt(env, "CORRAL_TRANSFER_CONCURRENCY"),
    transferPartMin: positiveNumber(env, "CORRAL_TRANSFER_PART_MIN"),
    transferStallMs: (positiveNumber(env, "CORRAL_TRANSFER_STALL_TIMEOUT") ?? 30) * 1000,
    debug: parseBool(envValue(env, "CORRAL_DEBUG", "OLLAMA_DEBUG")),
    get gpu(): GpuSetting {
      return (gpu ??= parseGpuSetting(envValue(env, "CORRAL_GPU")));
    },
    get verify(): VerifyPolicy {
      return (verify ??= parseVerifyPolicy(envValue(env, "CORRAL_VERIFY")));
    },
  };
}

let processConfig: DaemonConfig | undefined;

/**
 * This process's configuration, read from its environment on first use. Modules below the
 * entry points ask here instead of reading the environment themselves.
 */
export function daemonConfig(): DaemonConfig {
  return (processConfig ??= loadConfig(process.env));
}

/** Local pages and desktop-app webviews, on any port: what Ollama allows without configuration. */
const DEFAULT_ORIGINS = [
  ...["localhost", "127.0.0.1", "0.0.0.0", "[::1]"].flatMap((host) => [`http://${host}`, `https://${host}`, `http://${host}:*`, `https://${host}:*`]),
  "app://*",
  "file://*",
  "tauri://*",
  "vscode-webview://*",
  "vscode-file://*",
];

/** The comma-separated patterns of a CORRAL_ORIGINS value (`*` is a wildcard), then the defaults. */
export function allowedOrigins(value: string | undefined): string[] {
  const configured = (value ?? "").split(",").map((o) => o.trim().toLowerCase()).filter((o) => o !== "");
  return [...configured, ...DEFAULT_ORIGINS];
}

/** Go's ParseBool, where an unparsable non-empty value counts as true (as Ollama reads its flags). */
export function parseBool(v: string | undefined): boolean {
  if (v === undefined || v === "") return false;
  return !["0", "f", "F", "false", "FALSE", "False"].includes(v);
}
