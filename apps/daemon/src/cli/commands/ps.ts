// `corral ps [prefix]` and `corral stop MODEL` (docs/daemon.md, "CLI"): the models the
// daemon holds in memory, and unloading one of them.

import { humanBytes, humanTime } from "@corral/shared/format";
import { APIError, Client } from "../client.ts";
import { CLIError } from "../errors.ts";
import { qualify } from "../short-names.ts";
import { renderTable } from "../render/table.ts";
import { loadBody, loadOrUnload } from "../session.ts";

export interface RunningModel {
  name: string;
  model?: string;
  size: number;
  digest: string;
  expires_at: string;
  size_vram: number;
  context_length?: number;
}

/** Where the model sits: `100% CPU`, `100% GPU`, `48%/52% CPU/GPU`, or `Unknown`. */
export function processorLabel(size: number, sizeVRAM: number): string {
  if (sizeVRAM === 0) return "100% CPU";
  if (sizeVRAM === size) return "100% GPU";
  if (sizeVRAM > size || size === 0) return "Unknown";
  // Go's math.Round: halves away from zero; the share is positive so Math.round agrees.
  const cpu = Math.round(((size - sizeVRAM) / size) * 100);
  return `${cpu}%/${100 - cpu}% CPU/GPU`;
}

/** `Stopping...` once the expiry has passed, else `4 minutes from now` or `Forever`. */
export function untilLabel(expiresAt: Date, now: Date = new Date()): string {
  if (now.getTime() - expiresAt.getTime() > 0) return "Stopping...";
  return humanTime(expiresAt, now);
}

export function psRows(models: readonly RunningModel[], prefix?: string, now: Date = new Date()): string[][] {
  return models
    .filter((m) => prefix === undefined || m.name.startsWith(prefix))
    .map((m) => [
      m.name,
      m.digest.slice(0, 12),
      humanBytes(m.size),
      processorLabel(m.size, m.size_vram),
      String(m.context_length ?? 0),
      untilLabel(new Date(m.expires_at), now),
    ]);
}

export async function psCommand(prefix?: string): Promise<void> {
  const client = new Client();
  await client.heartbeat();
  const { models } = await client.request<{ models: RunningModel[] }>("GET", "/api/ps");
  process.stdout.write(renderTable(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], psRows(models ?? [], prefix)));
}

export async function stopCommand(model: string): Promise<void> {
  const client = new Client();
  await client.heartbeat();
  try {
    await client.request("POST", "/api/show", { model: qualify(model) });
    await loadOrUnload(client, loadBody({ model: qualify(model), keepAlive: 0, think: undefined }));
  } catch (e) {
    if (e instanceof APIError && e.message.includes("not found")) throw new CLIError(`couldn't find model "${model}" to stop`);
    throw e;
  }
}
