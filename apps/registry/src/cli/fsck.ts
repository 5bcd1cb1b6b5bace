// `corral-registry fsck`: checks that the database and the blob store agree. It opens both
// directly, or asks the running server through the admin API when that server holds the embedded
// database (PGlite admits one process per directory).

import { adminRequest } from "./admin-client.ts";
import type { Config } from "../config.ts";
import { openRegistry } from "../registry.ts";
import { adminToken, readServerInfo } from "../server.ts";
import { fsckRegistry, formatRegistryFsckReport, type RegistryFsckReport } from "../services/fsck.ts";

export interface FsckFlags {
  repair?: boolean;
  quick?: boolean;
  json?: boolean;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function viaServer(url: string, token: string, flags: FsckFlags): Promise<RegistryFsckReport> {
  try {
    return await adminRequest<RegistryFsckReport>(url, token, "POST", "/fsck", { repair: flags.repair === true, quick: flags.quick === true });
  } catch (e) {
    throw new Error(`fsck through ${url}: ${(e as Error).message}`);
  }
}

export async function registryFsck(config: Config, flags: FsckFlags): Promise<RegistryFsckReport> {
  if (!config.databaseURL) {
    const info = readServerInfo(config.dataDir);
    if (info && alive(info.pid)) {
      const token = adminToken(config, false);
      if (!token) throw new Error(`a registry server (pid ${info.pid}) holds ${config.dataDir}, but its admin token is not readable; set REGISTRY_ADMIN_TOKEN`);
      return viaServer(info.url, token, flags);
    }
  }
  const registry = await openRegistry(config);
  try {
    return await fsckRegistry(registry.db, registry.store, { repair: flags.repair === true, quick: flags.quick === true, graceSeconds: config.gcGraceSeconds });
  } finally {
    await registry.close();
  }
}

export async function fsckCommand(config: Config, flags: FsckFlags): Promise<void> {
  const report = await registryFsck(config, flags);
  process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + "\n" : formatRegistryFsckReport(report, flags.repair === true));
  if (report.remainingErrors > 0) process.exitCode = 1;
}
