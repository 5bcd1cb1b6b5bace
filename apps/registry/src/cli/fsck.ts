// `corral-registry fsck`: checks that the database and the blob store agree. It opens both
// directly, or asks the running server through the admin API when that server holds the embedded
// database (PGlite admits one process per directory).

import { adminRequest, embeddedServer, openExistingRegistry } from "./admin-client.ts";
import type { Config } from "../config.ts";
import { fsckRegistry, formatRegistryFsckReport, type RegistryFsckReport } from "../services/fsck.ts";

export interface FsckFlags {
  repair?: boolean;
  quick?: boolean;
  json?: boolean;
}

async function viaServer(url: string, token: string, flags: FsckFlags): Promise<RegistryFsckReport> {
  try {
    return await adminRequest<RegistryFsckReport>({ url, token }, "POST", "/fsck", { repair: flags.repair === true, quick: flags.quick === true });
  } catch (e) {
    throw new Error(`fsck through ${url}: ${(e as Error).message}`);
  }
}

export async function registryFsck(config: Config, flags: FsckFlags): Promise<RegistryFsckReport> {
  const server = embeddedServer(config);
  if (server) return viaServer(server.url, server.token, flags);
  const registry = await openExistingRegistry(config);
  try {
    return await fsckRegistry(registry, { repair: flags.repair === true, quick: flags.quick === true, graceSeconds: config.gcGraceSeconds });
  } finally {
    await registry.close();
  }
}

export async function fsckCommand(config: Config, flags: FsckFlags): Promise<void> {
  const report = await registryFsck(config, flags);
  process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + "\n" : formatRegistryFsckReport(report, flags.repair === true));
  if (report.remainingErrors > 0) process.exitCode = 1;
}
