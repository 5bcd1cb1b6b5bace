// What the fault suites (test/faults-*.test.ts) share: a GGUF large enough that a transfer or a
// create can be interrupted half way, an S3 server that can be stopped and started again on the
// same port and data, PostgreSQL restarts, polling, and tmpfs mounts.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { readGGUFHeader, writeGGUF } from "@corral/shared/gguf/index";
import { freePort } from "./ports.ts";
import { s3Env, spawnS3 } from "./s3.ts";
import { PG_CTL_WAIT, findPostgresBin } from "./postgres.ts";
import { registryBin, type RegistryProcess } from "./registry.ts";
import { trackChild } from "./daemon.ts";
import { fixtures } from "../fixtures.ts";

/**
 * stories260K with an extra F32 tensor of `extraBytes` pseudo-random bytes: a valid model of any
 * size (the runner is never asked to load it). Random bytes keep every model distinct.
 */
export async function writeLargeGGUF(out: string, extraBytes: number, seed = 1): Promise<void> {
  const h = await readGGUFHeader(fixtures.stories260K);
  const floats = Math.floor(extraBytes / 4);
  const chunk = 1 << 20;
  let state = seed >>> 0 || 1;
  await writeGGUF(out, {
    kv: [...h.kv.values()],
    tensors: [
      ...h.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, source: { path: fixtures.stories260K, offset: h.dataOffset + t.offset, size: t.size } })),
      {
        name: "filler.weight",
        dims: [floats],
        type: 0,
        source: {
          size: floats * 4,
          *chunks() {
            for (let left = floats * 4; left > 0; left -= chunk) {
              const b = Buffer.alloc(Math.min(chunk, left));
              for (let i = 0; i + 4 <= b.length; i += 4) {
                state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
                b.writeUInt32LE(state, i);
              }
              yield b;
            }
          },
        },
      },
    ],
  });
}

/** What a wait depends on: work that must still be under way while the condition is awaited. */
export interface WaitOptions {
  /** Milliseconds between checks. */
  everyMs?: number;
  /**
   * Work (a CLI run, a process's exit) whose end means the condition will not come: the wait then
   * fails, naming it and with what it ended, instead of polling for good.
   */
  during?: Record<string, Promise<unknown>>;
}

/**
 * Polls `check` until it gives a value; an exception from `check` ends the wait, naming `what` was
 * awaited, and so does the end of any work in `during`. No deadline of its own: how long something
 * takes depends on the machine, and a wait that never ends is ended by the test runner's overall
 * limit.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, { everyMs = 25, during = {} }: WaitOptions = {}): Promise<T> {
  let ended: string | undefined;
  for (const [name, work] of Object.entries(during)) {
    const end = (how: string): void => void (ended ??= `${name} ended before ${what}: ${how}`);
    work.then((v) => end(describeEnd(v)), (e: unknown) => end(`failed: ${(e as Error).message ?? String(e)}`));
  }
  for (;;) {
    let v: T | undefined | false;
    try {
      v = await check();
    } catch (e) {
      throw new Error(`waiting for ${what}: ${(e as Error).message}`, { cause: e });
    }
    if (v) return v;
    // Checked after the condition: work that ended once the condition held is no failure.
    if (ended) throw new Error(ended);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A settled value, short: a CLI result's exit code and last lines, or the value itself. */
function describeEnd(v: unknown): string {
  if (v && typeof v === "object" && "code" in v) {
    const r = v as { code: unknown; stdout?: string; stderr?: string };
    const tail = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-5).join("\n");
    return `exit code ${String(r.code)}${tail ? `:\n${tail}` : ""}`;
  }
  return String(v);
}

/** A process's exit as a promise, for `during`: its code or signal. */
export function exited(child: ChildProcess): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(`exit ${child.exitCode ?? child.signalCode}`);
  return new Promise((r) => child.once("exit", (code, signal) => r(`exit ${code ?? signal}`)));
}


/** s3rver that can be stopped outright and started again with the same port and objects. */
export interface RestartableS3 {
  endpoint: string;
  dir: string;
  env: Record<string, string>;
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRestartableS3(bucket: string): Promise<RestartableS3> {
  const dir = mkdtempSync(join(tmpdir(), "corral-s3-"));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = await spawnS3(dir, port, bucket);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = exited(c);
    c.kill("SIGKILL");
    await gone;
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    dir,
    env: s3Env(endpoint, bucket),
    kill,
    start,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Stops and starts the cluster behind a test Postgres (found through its data_directory). */
export async function postgresControl(url: string, port: number): Promise<{ stop(): void; start(): void }> {
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const dir = (await client.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'data_directory'")).rows[0]!.setting;
  await client.end();
  const bin = findPostgresBin()!;
  const asRoot = userInfo().uid === 0;
  const run = (args: string[]): void => {
    const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(bin, "pg_ctl"), ...args]] : [join(bin, "pg_ctl"), args];
    const r = spawnSync(file, argv, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`pg_ctl ${args.at(-1)} failed: ${r.stderr}`);
  };
  return {
    stop: () => run(["-D", dir, "-m", "fast", ...PG_CTL_WAIT, "stop"]),
    start: () =>
      run(["-D", dir, "-l", join(dir, "log"), ...PG_CTL_WAIT, "-o", `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`, "start"]),
  };
}

/** Mounts a tmpfs of `megabytes` at a new directory; undefined (with why) where mounting is impossible. */
export function mountTmpfs(megabytes: number): { dir: string; unmount(): void } | { skip: string } {
  if (userInfo().uid !== 0) return { skip: "mounting a tmpfs needs root" };
  const dir = mkdtempSync(join(tmpdir(), "corral-tmpfs-"));
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${megabytes}m`, "tmpfs", dir], { encoding: "utf8" });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { skip: `cannot mount a tmpfs here: ${r.stderr.trim() || `mount exited with ${r.status}`}` };
  }
  return {
    dir,
    unmount() {
      spawnSync("umount", ["-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A registry process on the address in `env.REGISTRY_ADDR` (so a restart keeps the host:port that
 * model names carry). It is killed if it does not come up.
 */
export async function startRegistryAt(env: NodeJS.ProcessEnv & { REGISTRY_ADDR: string; REGISTRY_DATA: string }): Promise<RegistryProcess> {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, REGISTRY_URL: `http://${env.REGISTRY_ADDR}`, ...env };
  const child = spawn(process.execPath, [registryBin, "serve"], { env: fullEnv, stdio: ["ignore", "pipe", "pipe"] });
  trackChild(child);
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const url = `http://${env.REGISTRY_ADDR}`;
  // Until it answers or exits: a loaded machine may take long to start it, the test runner bounds that.
  try {
    await waitFor(
      `the registry at ${url}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`registry exited with ${child.exitCode}:\n${log}`);
        return fetch(`${url}/v2/`).then(() => true).catch(() => false);
      },
      { everyMs: 100 },
    );
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return {
    url,
    host: env.REGISTRY_ADDR,
    env: fullEnv,
    process: child,
    logs: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = exited(child);
        child.kill("SIGTERM");
        await gone;
      }
    },
  };
}
