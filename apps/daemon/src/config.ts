// The daemon's configuration, read from the environment once. Each CORRAL_* variable falls back
// to its OLLAMA_* twin so that an existing Ollama setup (models directory, host) works as it is.

import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Reads a variable the way Ollama does: trimmed, then stripped of surrounding quotes. */
function envValue(env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined) continue;
    const v = raw.trim().replace(/^["']+|["']+$/g, "");
    if (v !== "") return v;
  }
  return undefined;
}

export interface HostAddress {
  scheme: "http" | "https";
  host: string;
  port: number;
  /** Path prefix for the client (OLLAMA_HOST may carry one). */
  path: string;
}

/** Parses a host setting as Ollama does (§1.2): scheme optional, default port 11434. */
export function parseHost(value: string | undefined): HostAddress {
  let v = (value ?? "").trim();
  let scheme: "http" | "https" = "http";
  let defaultPort = 11434;
  const sep = v.indexOf("://");
  if (sep >= 0) {
    const s = v.slice(0, sep).toLowerCase();
    v = v.slice(sep + 3);
    if (s === "https") {
      scheme = "https";
      defaultPort = 443;
    } else {
      defaultPort = 80;
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
  const m = /^\[([^\]]*)\](?::(.*))?$/.exec(v) ?? /^([^:]*):([^:]*)$/.exec(v);
  if (m) {
    host = m[1] ?? "";
    const p = m[2];
    if (p !== undefined && p !== "") {
      const n = Number(p);
      if (Number.isInteger(n) && n >= 0 && n <= 65535) port = n;
      else console.warn(`invalid port ${JSON.stringify(p)}, using ${defaultPort}`);
    }
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

export function loadConfig(env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const home = env["HOME"] || homedir();
  const homeDir = resolve(envValue(env, "CORRAL_HOME") ?? join(home, ".corral"));
  const models = envValue(env, "CORRAL_MODELS", "OLLAMA_MODELS");
  return {
    modelsDir: resolve(models ?? join(homeDir, "models")),
    homeDir,
    host: parseHost(envValue(env, "CORRAL_HOST", "OLLAMA_HOST")),
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
