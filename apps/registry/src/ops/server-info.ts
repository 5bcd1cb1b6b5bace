// What an embedded-database registry records in its data directory for the admin CLI: where the
// running server listens (server.json) and its admin token (admin-token). Kept apart from the
// server so that admin commands read them without loading it.

import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.ts";

export interface ServerInfo {
  url: string;
  pid: number;
}

export const serverInfoFile = (dataDir: string): string => join(dataDir, "server.json");
export const adminTokenFile = (dataDir: string): string => join(dataDir, "admin-token");

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
