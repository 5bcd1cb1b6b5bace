// `corral fsck`: checks the model store in CORRAL_MODELS directly (no daemon needed) and, with
// --repair, fixes what it found. While a daemon answers on CORRAL_HOST, files it may be writing
// right now (younger than an hour) are reported but left alone.

import { existsSync } from "node:fs";
import { daemonConfig } from "../../config.ts";
import { fsckStore, formatFsckReport } from "../../store/fsck.ts";
import { Client } from "../client.ts";
import { CLIError } from "../errors.ts";

export interface FsckFlags {
  repair?: boolean;
  quick?: boolean;
  json?: boolean;
}

async function daemonRunning(): Promise<boolean> {
  try {
    await new Client().heartbeat();
    return true;
  } catch {
    return false;
  }
}

export async function fsckCommand(flags: FsckFlags): Promise<void> {
  const { modelsDir } = daemonConfig();
  if (!existsSync(modelsDir)) throw new CLIError(`models directory ${modelsDir} does not exist (set CORRAL_MODELS)`);
  const running = await daemonRunning();
  if (running && flags.repair && !flags.json) process.stderr.write("a daemon is running: files younger than an hour are left alone\n");
  const report = await fsckStore(modelsDir, {
    repair: flags.repair === true,
    quick: flags.quick === true,
    graceMs: running ? 60 * 60 * 1000 : 0,
  });
  process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + "\n" : formatFsckReport(report, flags.repair === true));
  // Non-zero while a model is unusable; leftovers that only take space do not count.
  if (report.remainingErrors > 0) process.exitCode = 1;
}
