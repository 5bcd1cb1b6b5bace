// `corral-registry serve`: opens the registry, listens, and records where it listens and its admin
// token in the data directory, so the admin CLI can reach it while it holds the embedded database.

import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { createApp } from "./app.ts";
import { parseAddr, type Config } from "./config.ts";
import { openRegistry, type OpenOptions, type Registry } from "./registry.ts";

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

export interface RunningServer {
  url: string;
  registry: Registry;
  close(): Promise<void>;
}

export async function startServer(config: Config, opts: OpenOptions & { log?: (line: string) => void } = {}): Promise<RunningServer> {
  const log = opts.log ?? ((line: string) => console.error(line));
  mkdirSync(config.dataDir, { recursive: true });
  const registry = await openRegistry(config, opts);
  const { host, port } = parseAddr(config.addr);
  const app = createApp(registry, { adminToken: adminToken(config, true), log });
  let server: Server;
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server = serve({ fetch: app.fetch, hostname: host, port }, resolve) as Server;
    server.once("error", reject);
  });
  // Large uploads can take longer than Node's default request timeout.
  server!.requestTimeout = 0;
  server!.headersTimeout = 60_000;
  server!.keepAliveTimeout = 65_000;
  const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${hostPart}:${address.port}`;
  writeFileSync(serverInfoFile(config.dataDir), JSON.stringify({ url, pid: process.pid }) + "\n");
  log(`corral-registry listening on ${url} (database: ${registry.dbKind}, blobs: ${registry.store.kind}${config.publicURL ? `, public URL ${config.publicURL}` : ""})`);
  let closed = false;
  return {
    url,
    registry,
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      const info = readServerInfo(config.dataDir);
      if (info?.pid === process.pid) rmSync(serverInfoFile(config.dataDir), { force: true });
      await registry.close();
    },
  };
}
