// What an embedded-database registry records in its data directory for the admin CLI: where the
// running server listens (server.json) and its admin token (admin-token); whether a directory holds
// a registry at all; and the line `serve` prints for the person who started it. Kept apart from the
// server so that admin commands read them without loading it.

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join, relative, sep } from "node:path";
import type { Config } from "../config.ts";

export interface ServerInfo {
  url: string;
  pid: number;
}

export const serverInfoFile = (dataDir: string): string => join(dataDir, "server.json");
export const adminTokenFile = (dataDir: string): string => join(dataDir, "admin-token");

/**
 * Whether the data directory holds an embedded registry's database: PostgreSQL (PGlite too) writes
 * PG_VERSION when it creates a cluster. Admin commands check this so that one run in the wrong
 * folder does not create an empty registry that the running one never sees.
 */
export function hasEmbeddedDatabase(dataDir: string): boolean {
  return existsSync(join(dataDir, "db", "PG_VERSION"));
}

/** The admin token: REGISTRY_ADMIN_TOKEN, else the one in the data directory, created on first use. */
export function adminToken(config: Config, create: boolean): string | undefined {
  if (config.adminToken) return config.adminToken;
  const file = adminTokenFile(config.dataDir);
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    if (!create) return undefined;
  }
  mkdirSync(config.dataDir, { recursive: true });
  const token = randomBytes(32).toString("base64url");
  writeFileSync(file, token + "\n", { mode: 0o600 });
  return token;
}

export function readServerInfo(dataDir: string): ServerInfo | undefined {
  try {
    const v = JSON.parse(readFileSync(serverInfoFile(dataDir), "utf8")) as Partial<ServerInfo>;
    if (typeof v.url === "string" && typeof v.pid === "number") return { url: v.url, pid: v.pid };
  } catch {
    // no server recorded
  }
  return undefined;
}

/** A path as the person at `cwd` would type it: ./relative inside it, absolute elsewhere. */
function shownPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  if (rel === "") return ".";
  return rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel) ? path : `.${sep}${rel}`;
}

/**
 * The one human line `serve` prints next to its JSON logs: where the registry is reached, where its
 * data lives (`database`: how PostgreSQL is named without its password) and where the admin token
 * is, never the token itself.
 */
export function startLine(config: Config, url: string, database: string | undefined, cwd: string = process.cwd()): string {
  const dataDir = shownPath(config.dataDir, cwd);
  const blobs = config.s3 ? `blobs in S3 bucket ${config.s3.bucket}` : `blobs in ${dataDir}`;
  const data = config.databaseURL ? `database ${database ?? "PostgreSQL"}, ${blobs}` : `data in ${dataDir}${config.s3 ? ` (${blobs})` : ""}`;
  const admin = config.adminToken
    ? "admin token from REGISTRY_ADMIN_TOKEN"
    : config.databaseURL
      ? "admin API off (set REGISTRY_ADMIN_TOKEN to turn it on)"
      : `admin token in ${shownPath(adminTokenFile(config.dataDir), cwd)}`;
  return `Corral registry at ${url} — ${data}, ${admin}`;
}
