// A throwaway PostgreSQL cluster for tests: initdb into a temporary directory as the `postgres`
// OS user (initdb refuses root), trust auth, a free port on 127.0.0.1, fsync off. stop() removes it.
// Suites that need PostgreSQL call startPostgres() once per file and createDatabase() per case.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from "node:fs";
import { freePort } from "./ports.ts";
import { aptInstall } from "./apt.ts";
import { onExit } from "./on-exit.ts";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export interface Postgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** The newest installed PostgreSQL's bin directory, or undefined. */
export function findPostgresBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], "bin") : undefined;
}

/** Installs PostgreSQL with apt when it is missing; returns why not when that is impossible. */
export function ensurePostgres(): { bin: string } | { skip: string } {
  let bin = findPostgresBin();
  if (!bin) {
    if (!aptInstall(["--no-install-recommends", "postgresql"])) return { skip: "PostgreSQL is not installed and apt-get could not install it" };
    bin = findPostgresBin();
    if (!bin) return { skip: "PostgreSQL was installed but initdb was not found under /usr/lib/postgresql" };
  }
  return { bin };
}

/**
 * pg_ctl's -w gives up after 60 seconds unless told otherwise; a loaded machine may need longer to
 * start or stop a cluster, and the test runner's overall limit bounds the wait instead.
 */
export const PG_CTL_WAIT = ["-w", "-t", String(24 * 3600)];

/** The clusters this process started and has not stopped; stopped when it exits, however it exits. */
const clusters = new Map<string, () => void>();
let stoppingClusters = false;

function trackCluster(dir: string, stop: () => void): void {
  if (!stoppingClusters) {
    stoppingClusters = true;
    onExit(() => {
      for (const halt of clusters.values()) {
        try {
          halt();
        } catch {
          // Already stopped, or never started: nothing is left to stop.
        }
      }
    });
  }
  clusters.set(dir, stop);
}

export async function startPostgres(): Promise<Postgres> {
  const found = ensurePostgres();
  if ("skip" in found) throw new Error(found.skip);
  const { bin } = found;
  const dir = mkdtempSync(join(tmpdir(), "corral-pg-"));
  chmodSync(dir, 0o700);
  const asRoot = userInfo().uid === 0;
  if (asRoot) execFileSync("chown", ["postgres:postgres", dir]);
  const run = (cmd: string, args: string[]): void => {
    const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(bin, cmd), ...args]] : [join(bin, cmd), args];
    execFileSync(file as string, argv as string[], { stdio: ["ignore", "ignore", "pipe"] });
  };
  const halt = (): void => {
    // Immediate: the data is thrown away with the directory.
    if (existsSync(join(dir, "postmaster.pid"))) run("pg_ctl", ["-D", dir, "-m", "immediate", ...PG_CTL_WAIT, "stop"]);
    rmSync(dir, { recursive: true, force: true });
  };
  trackCluster(dir, halt);
  const port = await freePort();
  try {
    run("initdb", ["-D", dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions"]);
    run("pg_ctl", [
      "-D", dir, "-l", join(dir, "log"), ...PG_CTL_WAIT, "-o",
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`,
      "start",
    ]);
  } catch (e) {
    // A postmaster that started but did not answer pg_ctl is stopped too.
    clusters.delete(dir);
    try {
      halt();
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
    throw new Error(`could not start PostgreSQL: ${(e as { stderr?: Buffer }).stderr?.toString() ?? (e as Error).message}`);
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  return {
    url,
    port,
    async createDatabase(name: string): Promise<string> {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name}: use lower-case letters, digits and _`);
      const pg = (await import("pg")).default;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      clusters.delete(dir);
      try {
        run("pg_ctl", ["-D", dir, "-m", "immediate", ...PG_CTL_WAIT, "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
