// The daemon's configuration, read from the environment once. Each CORRAL_* variable falls back
// to its OLLAMA_* twin so that an existing Ollama setup (models directory, host) works as it is.

import { isIP } from "node:net";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

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
}

/** CORRAL_HOST, else OLLAMA_HOST, else the default; an error names the one that is wrong. */
function hostSetting(env: NodeJS.ProcessEnv): HostAddress {
  const setting = envSetting(env, "CORRAL_HOST", "OLLAMA_HOST");
  return parseHost(setting?.value, setting?.name);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const home = env["HOME"] || homedir();
  const homeDir = resolve(envValue(env, "CORRAL_HOME") ?? join(home, ".corral"));
  const models = envValue(env, "CORRAL_MODELS", "OLLAMA_MODELS");
  return {
    modelsDir: resolve(models ?? join(homeDir, "models")),
    homeDir,
    host: hostSetting(env),
    noPrune: parseBool(envValue(env, "CORRAL_NOPRUNE", "OLLAMA_NOPRUNE")),
    origins: allowedOrigins(envValue(env, "CORRAL_ORIGINS", "OLLAMA_ORIGINS")),
  };
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
