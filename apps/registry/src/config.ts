// The registry's configuration, read from the environment in one place (README "Registry").

import { resolve } from "node:path";

export interface S3Config {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  /** "WHEN_REQUIRED" keeps the SDK from sending aws-chunked bodies that some S3-compatible servers mis-store. */
  checksums: "WHEN_REQUIRED" | "WHEN_SUPPORTED";
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
}

export interface Config {
  /** host:port to listen on. */
  addr: string;
  dataDir: string;
  databaseURL: string | undefined;
  s3: S3Config | undefined;
  /** Externally visible base URL (no trailing slash); undefined means "from the request's Host". */
  publicURL: string | undefined;
  /** Visibility of a repository created by its first push. */
  defaultVisibility: "public" | "private";
  tokenTTLSeconds: number;
  /** How far a token request's `ts` may be from the server clock. */
  signatureWindowSeconds: number;
  /** How long a blob URL handed out in `Location` stays valid. */
  blobURLTTLSeconds: number;
  /** Blobs younger than this, or touched more recently, survive garbage collection. */
  gcGraceSeconds: number;
  /** Upload sessions idle for longer than this are removed by garbage collection. */
  uploadTTLSeconds: number;
  /** Bearer token for /admin; when unset one is generated into the data directory. */
  adminToken: string | undefined;
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

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const bucket = env["S3_BUCKET"]?.trim();
  const visibility = env["REGISTRY_DEFAULT_VISIBILITY"]?.trim() || "private";
  if (visibility !== "public" && visibility !== "private") {
    throw new Error(`REGISTRY_DEFAULT_VISIBILITY: expected public or private, got ${JSON.stringify(visibility)}`);
  }
  const publicURL = env["REGISTRY_URL"]?.trim().replace(/\/+$/, "");
  if (publicURL) {
    let u: URL;
    try {
      u = new URL(publicURL);
    } catch {
      throw new Error(`REGISTRY_URL: not a URL: ${JSON.stringify(publicURL)}`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`REGISTRY_URL: expected http:// or https://, got ${u.protocol}`);
  }
  return {
    addr: env["REGISTRY_ADDR"]?.trim() || "127.0.0.1:5005",
    dataDir: resolve(env["REGISTRY_DATA"]?.trim() || "./registry-data"),
    databaseURL: env["DATABASE_URL"]?.trim() || undefined,
    s3: bucket
      ? {
          bucket,
          endpoint: env["S3_ENDPOINT"]?.trim() || undefined,
          region: env["S3_REGION"]?.trim() || env["AWS_REGION"]?.trim() || "us-east-1",
          forcePathStyle: bool(env, "S3_FORCE_PATH_STYLE", false),
          checksums: bool(env, "S3_REQUEST_CHECKSUMS", false) ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
          accessKeyId: env["AWS_ACCESS_KEY_ID"] || undefined,
          secretAccessKey: env["AWS_SECRET_ACCESS_KEY"] || undefined,
        }
      : undefined,
    publicURL: publicURL || undefined,
    defaultVisibility: visibility,
    tokenTTLSeconds: num(env, "REGISTRY_TOKEN_TTL", 300),
    signatureWindowSeconds: num(env, "REGISTRY_SIGNATURE_WINDOW", 300),
    blobURLTTLSeconds: num(env, "REGISTRY_BLOB_URL_TTL", 6 * 3600),
    gcGraceSeconds: num(env, "REGISTRY_GC_GRACE", 3600),
    uploadTTLSeconds: num(env, "REGISTRY_UPLOAD_TTL", 24 * 3600),
    adminToken: env["REGISTRY_ADMIN_TOKEN"]?.trim() || undefined,
  };
}

/** Splits REGISTRY_ADDR into host and port, accepting `host:port`, `:port` and `[v6]:port`. */
export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr.trim());
  if (!m) throw new Error(`REGISTRY_ADDR: expected host:port, got ${JSON.stringify(addr)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`REGISTRY_ADDR: port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}
