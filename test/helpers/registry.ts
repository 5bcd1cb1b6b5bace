// A real `corral-registry serve` process for end-to-end suites, and its admin CLI.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot, stopProcess } from "./daemon.ts";
import { freePort } from "./ports.ts";

export const registryBin = join(repoRoot, "apps/registry/bin/corral-registry.js");

export interface RegistryProcess {
  url: string;
  /** host:port, the registry part of model names. */
  host: string;
  env: NodeJS.ProcessEnv;
  process: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

/** Starts the registry; `env` selects PostgreSQL/S3 (else PGlite and files in a temporary folder). */
export async function startRegistry(env: NodeJS.ProcessEnv = {}): Promise<RegistryProcess> {
  const dataDir = env["REGISTRY_DATA"] ?? (await mkdtemp(join(tmpdir(), "corral-registry-")));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, REGISTRY_ADDR: host, REGISTRY_URL: `http://${host}`, REGISTRY_DATA: dataDir, ...env };
  const child = spawn(process.execPath, [registryBin, "serve"], { env: fullEnv, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const url = `http://${host}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`registry exited with ${child.exitCode}:\n${log}`);
    const up = await fetch(`${url}/v2/`).then(() => true).catch(() => false);
    if (up) break;
    if (i > 600) throw new Error(`registry did not start within 60s:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    host,
    env: fullEnv,
    process: child,
    logs: () => log,
    async stop() {
      await stopProcess(child);
      if (!env["REGISTRY_DATA"]) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `corral-registry <args>` against the same database and blob store. */
export function registryCLI(r: Pick<RegistryProcess, "env">, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [registryBin, ...args], { env: r.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
