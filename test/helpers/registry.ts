// A real `corral-registry serve` process for end-to-end suites, and its admin CLI.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot, stopProcess, trackChild } from "./daemon.ts";
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

/**
 * Starts the registry on a free loopback port, with REGISTRY_URL naming it unless `env` says
 * otherwise; `env` selects PostgreSQL/S3 (else PGlite and files in a temporary folder). A function
 * receives the chosen host:port, for settings that name it (REGISTRY_EXTRA_URLS). `cwd` is the
 * process's working directory (the test's own unless given). `port` starts it where an earlier one
 * listened (a restart on the same REGISTRY_DATA keeps the host its models were pushed to).
 */
export async function startRegistry(envOrFor: NodeJS.ProcessEnv | ((host: string) => NodeJS.ProcessEnv) = {}, opts: { cwd?: string; bin?: string; port?: number } = {}): Promise<RegistryProcess> {
  const port = opts.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  const env = typeof envOrFor === "function" ? envOrFor(host) : envOrFor;
  const dataDir = env["REGISTRY_DATA"] ?? (await mkdtemp(join(tmpdir(), "corral-registry-")));
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, REGISTRY_ADDR: host, REGISTRY_URL: `http://${host}`, REGISTRY_DATA: dataDir, ...env };
  const child = spawn(process.execPath, [opts.bin ?? registryBin, "serve"], { env: fullEnv, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
  trackChild(child);
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const url = `http://${host}`;
  // Until it answers or exits: a loaded machine may take long to start it, the test runner bounds that.
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      if (!env["REGISTRY_DATA"]) await rm(dataDir, { recursive: true, force: true });
      throw new Error(`registry exited with ${child.exitCode ?? child.signalCode}:\n${log}`);
    }
    const up = await fetch(`${url}/v2/`).then(() => true).catch(() => false);
    if (up) break;
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

/** Runs `corral-registry <args>` with `r`'s environment (the same database and blob store), in `r.cwd` if given. */
export function registryCLI(r: Pick<RegistryProcess, "env"> & { cwd?: string }, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [registryBin, ...args], { env: r.env, cwd: r.cwd, stdio: ["ignore", "pipe", "pipe"] });
    trackChild(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
