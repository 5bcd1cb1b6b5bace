// A real container engine for end-to-end suites: Debian's docker.io and docker-compose (installed
// with apt when missing). A Docker daemon that already answers (DOCKER_HOST, /var/run/docker.sock)
// is used as it is; otherwise the suite starts its own dockerd with its data under cacheDir, so
// images and build layers outlive the run, and stops it at the end.
//
// Why Docker and not Podman, both from Debian: Debian 12's Podman 4.3 runs health checks only
// through systemd timers (absent on machines without systemd, where a health check never runs
// by itself) and its podman-compose 1.0.3 ignores `depends_on` conditions; dockerd runs the checks
// itself and docker-compose 1.29 honours the conditions, so docker-compose.yml runs as written.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { aptInstall } from "./apt.ts";
import { stopProcess } from "./daemon.ts";

/** Survives runs: the suite's own dockerd's data (images, build cache) and the base image's inputs. */
export const cacheDir = join(tmpdir(), "corral-containers");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion and collects its output; a non-zero exit is a result, not a throw. */
export function runProgram(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}

/** The last `n` non-empty lines of a program's output, for error messages. */
export function tail(text: string, n = 20): string {
  return text.split("\n").filter((l) => l.trim()).slice(-n).join("\n");
}

export interface Engine {
  /** What runs the containers, for reports: the daemon's version and where it came from. */
  description: string;
  /** The environment the docker CLI and docker-compose need to reach the daemon. */
  env: NodeJS.ProcessEnv;
  /** Debian's docker CLI. */
  dockerPath: string;
  /** Runs it against the daemon. */
  docker(args: string[], opts?: { input?: string; cwd?: string }): Promise<RunResult>;
  /** True when this run started the daemon (and stop() ends it). */
  owned: boolean;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function which(name: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Debian's docker CLI (a newer one elsewhere on PATH may expect a buildx plugin this machine lacks). */
function dockerCLI(): string | undefined {
  return existsSync("/usr/bin/docker") ? "/usr/bin/docker" : which("docker");
}

/** Installs what is missing; says what could not be had. */
function ensurePackages(): { docker: string; dockerd: string } | { skip: string } {
  if (!dockerCLI() || !which("docker-compose") || !(existsSync("/usr/sbin/dockerd") || which("dockerd"))) {
    if (!aptInstall(["--no-install-recommends", "docker.io", "docker-compose"])) return { skip: "docker.io and docker-compose are not installed and apt-get could not install them" };
  }
  const docker = dockerCLI();
  const dockerd = existsSync("/usr/sbin/dockerd") ? "/usr/sbin/dockerd" : which("dockerd");
  if (!docker || !dockerd || !which("docker-compose")) return { skip: "apt-get installed docker.io and docker-compose but docker, dockerd or docker-compose is still not on PATH" };
  return { docker, dockerd };
}

function engineFor(docker: string, host: string, daemon: { owned: boolean; description: string; stop: () => Promise<void> }): Engine {
  const { owned, description, stop } = daemon;
  // The classic builder everywhere: docker-compose 1.29 builds through the API with it, and a
  // plain `docker build` then shares its layer cache.
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: "0", COMPOSE_DOCKER_CLI_BUILD: "0" };
  return {
    description,
    env,
    owned,
    dockerPath: docker,
    docker: (args, opts = {}) => runProgram(docker, args, { env, ...opts }),
    stop,
  };
}

async function answers(docker: string, host: string): Promise<string | undefined> {
  const r = await runProgram(docker, ["version", "--format", "{{.Server.Version}}"], { env: { ...process.env, DOCKER_HOST: host } });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/**
 * A Docker daemon to run containers on, or why there can be none here. Nothing is left running
 * that this call started, also when the start fails.
 */
export async function startEngine(): Promise<Engine | { skip: string }> {
  const found = ensurePackages();
  if ("skip" in found) return found;
  const { docker, dockerd } = found;
  const noop = async (): Promise<void> => {};

  for (const host of [process.env["DOCKER_HOST"], existsSync("/var/run/docker.sock") ? "unix:///var/run/docker.sock" : undefined]) {
    if (!host) continue;
    const version = await answers(docker, host);
    if (version) return engineFor(docker, host, { owned: false, description: `Docker ${version} at ${host}`, stop: noop });
  }

  mkdirSync(cacheDir, { recursive: true });
  const sock = join(cacheDir, "docker.sock");
  const host = `unix://${sock}`;
  // A dockerd an earlier, interrupted run left behind: use it, and leave it to whoever started it.
  const left = await answers(docker, host);
  if (left) return engineFor(docker, host, { owned: false, description: `Docker ${left}, the suite's own dockerd left running (${host})`, stop: noop });

  if (userInfo().uid !== 0) return { skip: "no Docker daemon answers and dockerd must run as root to start one" };
  const log = join(cacheDir, "dockerd.log");
  const fd = openSync(log, "w");
  let child: ChildProcess;
  try {
    child = spawn(
      dockerd,
      ["--host", host, "--data-root", join(cacheDir, "docker"), "--exec-root", join(cacheDir, "run"), "--pidfile", join(cacheDir, "docker.pid"), "--log-level", "warn"],
      { stdio: ["ignore", fd, fd] },
    );
  } finally {
    closeSync(fd);
  }
  // SIGTERM, never SIGKILL, if the test process ends first: a killed dockerd leaves its containerd
  // and every container running.
  const onExit = (): void => void (child.exitCode === null && child.signalCode === null && child.kill("SIGTERM"));
  process.once("exit", onExit);
  const stop = async (): Promise<void> => {
    process.removeListener("exit", onExit);
    await stopProcess(child);
  };
  let exited = false;
  child.once("exit", () => (exited = true));
  child.once("error", () => (exited = true));
  // Until it answers or exits; a loaded machine may take long, the test runner bounds that.
  for (;;) {
    if (exited) {
      process.removeListener("exit", onExit);
      return { skip: `dockerd could not start (${dockerd}, log ${log}):\n${tail(readFileSync(log, "utf8"), 5)}` };
    }
    const version = await answers(docker, host);
    if (version) return engineFor(docker, host, { owned: true, description: `Docker ${version}, dockerd started by the suite (data in ${cacheDir})`, stop });
    await sleep(200);
  }
}

/**
 * Whether a container runs at all: `true` in `image`. An engine that starts but cannot run a
 * container (no namespaces, cgroups or storage driver it can use) is a reason to skip, quoted.
 */
export async function canRunContainers(engine: Engine, image: string): Promise<{ ok: true } | { skip: string }> {
  const r = await engine.docker(["run", "--rm", "--network", "none", image, "true"]);
  return r.code === 0 ? { ok: true } : { skip: `${engine.description} cannot run a container: ${tail(r.stderr, 5)}` };
}
