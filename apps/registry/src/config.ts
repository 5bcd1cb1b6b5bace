// The registry's configuration, read from the environment in one place (README "Registry").

import { resolve } from "node:path";
import { namespaceProblem } from "./services/names.ts";

export interface S3Config {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  /** "WHEN_REQUIRED" keeps the SDK from sending aws-chunked bodies that some S3-compatible servers mis-store. */
  checksums: "WHEN_REQUIRED" | "WHEN_SUPPORTED";
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  /**
   * S3_PRESIGNED_URLS: blob downloads are sent to the bucket by presigned URL (absent: true);
   * false where clients cannot reach S3_ENDPOINT, and the registry serves the bytes itself.
   */
  presignedURLs?: boolean;
}

/** One mirrored namespace: its models are pulled through from `upstream` (docs/protocol.md, "Mirrors"). */
export interface MirrorConfig {
  namespace: string;
  /** The upstream's origin, `https://host[:port]`, without credentials: what logs, headers and the catalog show. */
  upstream: string;
  /** The upstream's host[:port], for display. */
  host: string;
  /** From `user:password@` in the URL: sent as Basic to the upstream and its token realm, never logged. */
  credentials: { username: string; password: string } | undefined;
}

export interface Config {
  /** host:port to listen on. */
  addr: string;
  dataDir: string;
  databaseURL: string | undefined;
  s3: S3Config | undefined;
  /**
   * REGISTRY_URL: the registry's own URL (no trailing slash), the token audience and the only URL
   * signed requests are accepted for besides `extraURLs`; undefined: derived from the listen address.
   */
  publicURL: string | undefined;
  /** REGISTRY_EXTRA_URLS: more URLs the registry is reached under (no trailing slashes). */
  extraURLs: string[];
  /** Visibility of a repository created by its first push. */
  defaultVisibility: "public" | "private";
  tokenTTLSeconds: number;
  /** How far a token request's `ts` may be from the server clock. */
  signatureWindowSeconds: number;
  /** Signed token and login-link requests allowed per client address and per key a minute (per replica); 0: unlimited. */
  tokenRatePerMinute: number;
  /** How long a blob URL handed out in `Location` stays valid. */
  blobURLTTLSeconds: number;
  /** Blobs younger than this, or touched more recently, survive garbage collection. */
  gcGraceSeconds: number;
  /**
   * Upload sessions with no chunk arriving for longer than this are removed by serve's periodic
   * sweep (and by garbage collection).
   */
  uploadTTLSeconds: number;
  /** Upload sessions one account may hold open at once; 0: unlimited. */
  uploadLimit: number;
  /** A connection on which no byte moves either way for this long is closed; 0: never. */
  idleTimeoutSeconds: number;
  /**
   * Bearer token for /admin. When unset, an embedded-database registry generates one into the data
   * directory; a PostgreSQL-backed one (possibly one of several replicas) leaves /admin off.
   */
  adminToken: string | undefined;
  /** How long SIGTERM/SIGINT waits for in-flight requests before closing their connections. */
  shutdownTimeoutSeconds: number;
  logLevel: LogLevel;
  /** REGISTRY_MIRRORS: namespaces served from an upstream registry, in the order given. */
  mirrors: MirrorConfig[];
  /** REGISTRY_MIRROR_TTL: how long a mirrored tag is served before it is resolved upstream again. */
  mirrorTTLSeconds: number;
  /** REGISTRY_MIRROR_MISS_TTL: how long a name the upstream does not have is answered as missing without asking it again. */
  mirrorMissTTLSeconds: number;
  /** REGISTRY_MIRROR_LOOKUP_RATE: upstream lookups of names the registry has no copy of, per client address and minute. */
  mirrorLookupRatePerMinute: number;
  /** REGISTRY_MIRROR_VISIBILITY: visibility of a repository created by its first fetch from upstream. */
  mirrorVisibility: "public" | "private";
}

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A whole number of things (not seconds), or an error naming the variable. */
function count(env: NodeJS.ProcessEnv, name: string, def: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return def;
  if (!/^\d{1,9}$/.test(raw)) throw new Error(`${name}: expected a whole number (0 for no limit), got ${JSON.stringify(env[name])}`);
  return Number(raw);
}

function num(env: NodeJS.ProcessEnv, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a non-negative number of seconds, got ${JSON.stringify(raw)}`);
  return n;
}

function bool(env: NodeJS.ProcessEnv, name: string, def: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return def;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new Error(`${name}: expected true or false, got ${JSON.stringify(env[name])}`);
}

/** An http(s) URL, or an error naming the variable. */
function httpURL(name: string, raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`${name}: not a URL: ${JSON.stringify(raw)}; expected http://host[:port] or https://host[:port]`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`${name}: expected http:// or https://, got ${u.protocol}`);
  if (!u.hostname) throw new Error(`${name}: the URL has no host`);
  return u;
}

/** A PostgreSQL connection URL; it carries a password, so the message never repeats it. */
function databaseURL(raw: string | undefined): string | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error("DATABASE_URL: not a URL; expected postgres://user:password@host:port/database");
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new Error(`DATABASE_URL: expected postgres:// or postgresql://, got ${u.protocol}`);
  }
  // A socket directory may come as ?host=/path instead of in the authority.
  if (!u.hostname && !u.searchParams.get("host")) throw new Error("DATABASE_URL: the URL has no host");
  return value;
}

function visibilityOf(env: NodeJS.ProcessEnv, name: string, def: "public" | "private"): "public" | "private" {
  const v = env[name]?.trim() || def;
  if (v !== "public" && v !== "private") throw new Error(`${name}: expected public or private, got ${JSON.stringify(v)}`);
  return v;
}

/** The mirror configuration of a namespace, if it is mirrored. */
export function mirrorOf(config: Pick<Config, "mirrors">, namespace: string): MirrorConfig | undefined {
  return config.mirrors.find((m) => m.namespace === namespace);
}

function logLevel(raw: string | undefined): LogLevel {
  const v = raw?.trim().toLowerCase() || "info";
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new Error(`REGISTRY_LOG_LEVEL: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(raw)}`);
  return v as LogLevel;
}

/**
 * An hour by default: a session is idle only while no chunk arrives (a chunk in progress keeps it
 * alive however long it takes), and clients resume or restart an interrupted push within minutes;
 * abandoned sessions hold disk and count against their account's limit until they expire.
 */
function uploadTTL(env: NodeJS.ProcessEnv): number {
  const ttl = num(env, "REGISTRY_UPLOAD_TTL", 3600);
  if (ttl === 0) throw new Error("REGISTRY_UPLOAD_TTL: must be more than 0 seconds (every upload session would expire at once)");
  return ttl;
}

/**
 * REGISTRY_MIRRORS: `namespace=URL` pairs separated by commas or white space. The URL may carry
 * `user:password@` for an upstream that wants credentials; every message names the pair by its
 * namespace and host only, so a password never reaches a log.
 */
export function parseMirrors(raw: string | undefined): MirrorConfig[] {
  const out: MirrorConfig[] = [];
  const entries = (raw ?? "").split(/[\s,]+/).filter(Boolean);
  if (entries.length > 100) throw new Error(`REGISTRY_MIRRORS: ${entries.length} entries; at most 100 namespaces can be mirrored`);
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new Error(`REGISTRY_MIRRORS: expected namespace=https://upstream, got ${JSON.stringify(entry.replace(/\/\/[^/@]*@/, "//…@").slice(0, 100))}`);
    const namespace = entry.slice(0, eq).toLowerCase();
    const problem = namespaceProblem(namespace);
    if (problem) throw new Error(`REGISTRY_MIRRORS: ${JSON.stringify(namespace.slice(0, 80))} cannot be a namespace: ${problem}`);
    let u: URL;
    try {
      u = new URL(entry.slice(eq + 1));
    } catch {
      throw new Error(`REGISTRY_MIRRORS: the upstream of ${namespace} is not a URL; expected ${namespace}=https://host[:port]`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`REGISTRY_MIRRORS: the upstream of ${namespace} must be http:// or https://, not ${u.protocol}`);
    if (!u.hostname) throw new Error(`REGISTRY_MIRRORS: the upstream of ${namespace} has no host`);
    if ((u.pathname !== "/" && u.pathname !== "") || u.search || u.hash) {
      throw new Error(`REGISTRY_MIRRORS: the upstream of ${namespace} must be just scheme://host[:port] (the model keeps its name upstream), not ${u.host}${u.pathname}`);
    }
    if (out.some((m) => m.namespace === namespace)) throw new Error(`REGISTRY_MIRRORS: ${namespace} is named twice`);
    const credentials = u.username || u.password ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : undefined;
    out.push({ namespace, upstream: u.origin, host: u.host, credentials });
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const bucket = env["S3_BUCKET"]?.trim();
  const visibility = visibilityOf(env, "REGISTRY_DEFAULT_VISIBILITY", "private");
  const publicURL = env["REGISTRY_URL"]?.trim().replace(/\/+$/, "");
  if (publicURL) httpURL("REGISTRY_URL", publicURL);
  const extraURLs = (env["REGISTRY_EXTRA_URLS"] ?? "")
    .split(",")
    .map((u) => u.trim().replace(/\/+$/, ""))
    .filter(Boolean);
  for (const u of extraURLs) httpURL("REGISTRY_EXTRA_URLS", u);
  const endpoint = env["S3_ENDPOINT"]?.trim() || undefined;
  if (endpoint) httpURL("S3_ENDPOINT", endpoint);
  const addr = env["REGISTRY_ADDR"]?.trim() || "127.0.0.1:5005";
  parseAddr(addr);
  return {
    addr,
    dataDir: resolve(env["REGISTRY_DATA"]?.trim() || "./registry-data"),
    databaseURL: databaseURL(env["DATABASE_URL"]),
    s3: bucket
      ? {
          bucket,
          endpoint,
          region: env["S3_REGION"]?.trim() || env["AWS_REGION"]?.trim() || "us-east-1",
          forcePathStyle: bool(env, "S3_FORCE_PATH_STYLE", false),
          checksums: bool(env, "S3_REQUEST_CHECKSUMS", false) ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
          accessKeyId: env["AWS_ACCESS_KEY_ID"] || undefined,
          secretAccessKey: env["AWS_SECRET_ACCESS_KEY"] || undefined,
          presignedURLs: bool(env, "S3_PRESIGNED_URLS", true),
        }
      : undefined,
    publicURL: publicURL || undefined,
    extraURLs,
    defaultVisibility: visibility,
    tokenTTLSeconds: num(env, "REGISTRY_TOKEN_TTL", 300),
    signatureWindowSeconds: num(env, "REGISTRY_SIGNATURE_WINDOW", 300),
    tokenRatePerMinute: count(env, "REGISTRY_TOKEN_RATE", 600),
    blobURLTTLSeconds: num(env, "REGISTRY_BLOB_URL_TTL", 6 * 3600),
    gcGraceSeconds: num(env, "REGISTRY_GC_GRACE", 3600),
    uploadTTLSeconds: uploadTTL(env),
    uploadLimit: count(env, "REGISTRY_UPLOAD_LIMIT", 100),
    idleTimeoutSeconds: num(env, "REGISTRY_IDLE_TIMEOUT", 60),
    adminToken: env["REGISTRY_ADMIN_TOKEN"]?.trim() || undefined,
    shutdownTimeoutSeconds: num(env, "REGISTRY_SHUTDOWN_TIMEOUT", 30),
    logLevel: logLevel(env["REGISTRY_LOG_LEVEL"]),
    mirrors: parseMirrors(env["REGISTRY_MIRRORS"]),
    // An hour: tags upstream move rarely (a new release), clients ask for the manifest on every
    // pull, and an hour keeps ten machines pulling from asking upstream each time while a moved tag
    // is seen the same day; 0 resolves the tag upstream on every manifest request.
    mirrorTTLSeconds: num(env, "REGISTRY_MIRROR_TTL", 3600),
    // A minute: a client (or a typo in a script) asking for a name the upstream lacks over and
    // over costs the upstream one request a minute, and a model published upstream is seen soon.
    mirrorMissTTLSeconds: num(env, "REGISTRY_MIRROR_MISS_TTL", 60),
    // A person pulls a handful of models; a client asking for a new name every second is probing
    // the upstream through the registry (each such request costs the upstream a manifest lookup).
    mirrorLookupRatePerMinute: count(env, "REGISTRY_MIRROR_LOOKUP_RATE", 60),
    mirrorVisibility: visibilityOf(env, "REGISTRY_MIRROR_VISIBILITY", "public"),
  };
}

/** Splits REGISTRY_ADDR into host and port, accepting `host:port`, `:port` and `[v6]:port`. */
export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\s/]*)):(\d{1,5})$/.exec(addr.trim());
  if (!m) throw new Error(`REGISTRY_ADDR: expected host:port, got ${JSON.stringify(addr)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`REGISTRY_ADDR: port ${port} is out of range (0-65535)`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}
