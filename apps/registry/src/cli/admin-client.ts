// The admin operations for the CLI: straight to the database, or through the running server's
// admin API when that server owns the embedded database (PGlite admits one process per directory).

import type { Config } from "../config.ts";
import { openRegistry, type Registry } from "../registry.ts";
import { directAdmin, type AdminOps } from "../services/admin.ts";
import { splitRepoPath } from "../services/names.ts";
import { adminToken, hasEmbeddedDatabase, readServerInfo } from "../ops/server-info.ts";
import { processAlive } from "../ops/process-alive.ts";

/** A running server's address and the admin token it accepts. */
export interface AdminServer {
  url: string;
  token: string;
}

export interface AdminConnection {
  ops: AdminOps;
  via: string;
  close(): Promise<void>;
}

/**
 * The running server that holds an embedded registry's data directory, with the admin token to
 * reach it: the embedded database admits one process, so commands go through that server.
 * Undefined when the registry uses PostgreSQL or no live server is recorded.
 */
export function embeddedServer(config: Config): AdminServer | undefined {
  if (config.databaseURL) return undefined;
  const info = readServerInfo(config.dataDir);
  if (!info || !processAlive(info.pid)) return undefined;
  const token = adminToken(config, false);
  if (!token) throw new Error(`a registry server (pid ${info.pid}) holds ${config.dataDir}, but its admin token is not readable; set REGISTRY_ADMIN_TOKEN`);
  return { url: info.url, token };
}

/** One call of the running server's JSON admin API; errors carry the server's message. */
export async function adminRequest<T>(server: AdminServer, method: string, path: string, body?: unknown): Promise<T> {
  const { url, token } = server;
  let res: Response;
  try {
    res = await fetch(`${url}/admin${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    throw new Error(`the registry at ${url} did not answer: ${(e as { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { errors?: Array<{ message?: string }> }).errors?.[0]?.message ?? text;
    } catch {
      // not JSON
    }
    throw new Error(message || `HTTP ${res.status}`);
  }
  return JSON.parse(text) as T;
}

export function httpAdmin(url: string, token: string): AdminOps {
  const server = { url, token };
  const call = <T>(method: string, path: string, body?: unknown): Promise<T> => adminRequest<T>(server, method, path, body);
  const seg = encodeURIComponent;
  return {
    addUser: (name, keys) => call("POST", "/users", { name, keys }),
    listUsers: () => call("GET", "/users"),
    addKey: (user, key) => call("POST", `/users/${seg(user)}/keys`, { key }),
    removeKey: (user, key) => call("DELETE", `/users/${seg(user)}/keys`, { key }),
    createOrg: (name, owner) => call("POST", "/orgs", { name, owner }),
    addMember: (org, user, role) => call("POST", `/orgs/${seg(org)}/members`, { user, role }),
    grant: (ns, user, role) => call("POST", `/namespaces/${seg(ns)}/grants`, { user, role }),
    setVisibility: async (repository, visibility) => {
      const parts = splitRepoPath(repository);
      // The same words the server uses when it opens the data itself.
      if (!parts) throw new Error(`invalid repository "${repository}": expected namespace/model`);
      return call("PUT", `/repositories/${seg(parts.namespace)}/${seg(parts.model)}/visibility`, { visibility });
    },
    gc: (dryRun) => call("POST", "/gc", { dryRun }),
    token: (user, scopes, service) => call("POST", "/tokens", { user, scopes, service }),
  };
}

/**
 * Opens the registry's database and blob store directly, for an admin command when no server holds
 * them. Only `serve` and `migrate` create a registry: an admin command run in a folder without one
 * (or with REGISTRY_DATA unset, or set wrongly) would otherwise make an empty registry there, report
 * success, and change nothing in the one that is running.
 */
export async function openExistingRegistry(config: Config): Promise<Registry> {
  if (!config.databaseURL && !hasEmbeddedDatabase(config.dataDir)) {
    throw new Error(
      `no registry in ${config.dataDir}: no running server is recorded there and it holds no registry database; ` +
        "set REGISTRY_DATA to the running registry's data directory (the folder `corral-registry serve` was started with, ./registry-data by default), or DATABASE_URL for a registry on PostgreSQL",
    );
  }
  return openRegistry(config);
}

export async function connectAdmin(config: Config): Promise<AdminConnection> {
  const server = embeddedServer(config);
  if (server) return { ops: httpAdmin(server.url, server.token), via: server.url, close: async () => {} };
  const registry = await openExistingRegistry(config);
  return { ops: directAdmin(registry), via: config.databaseURL ? "database" : config.dataDir, close: () => registry.close() };
}
