// Starts a real `corral serve` process on a free port with its own model directory and home, and
// runs the real `corral` CLI against it. Used by every suite that needs a daemon.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { sha256Bytes } from "@corral/shared/digest";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { onExit } from "./on-exit.ts";

export const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const corralBin = join(repoRoot, "apps/daemon/bin/corral.js");

export interface Daemon {
  url: string;
  /** CORRAL_HOST value for clients. */
  host: string;
  home: string;
  modelsDir: string;
  env: NodeJS.ProcessEnv;
  process: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
let killingChildren = false;

/**
 * Remembers a process so that it is killed when the test process exits, however that happens (a
 * failed start, a failed hook, the runner ending the file): no test leaves one behind.
 */
export function trackChild(child: ChildProcess): void {
  if (!killingChildren) {
    killingChildren = true;
    onExit(() => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill("SIGKILL")));
  }
  children.add(child);
  child.once("exit", () => children.delete(child));
}

/** Sends SIGTERM and waits until the process has exited. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** Uploads a file to the daemon's /api/blobs, as the CLI does before a create; returns its digest. */
export async function uploadFile(daemon: Pick<Daemon, "url">, path: string): Promise<string> {
  const bytes = await readFile(path);
  const digest = sha256Bytes(bytes);
  const r = await fetch(`${daemon.url}/api/blobs/${digest}`, { method: "POST", body: bytes });
  if (r.status !== 201 && r.status !== 200) throw new Error(`uploading ${path}: ${r.status} ${await r.text()}`);
  return digest;
}

/**
 * Creates `model` on the daemon from one GGUF file as a client does (upload, then /api/create with
 * the file under `name`), with any further create fields; throws with the daemon's answer otherwise.
 */
export async function createModelFrom(daemon: Pick<Daemon, "url">, opts: { model: string; path: string; name?: string; extra?: Record<string, unknown> }): Promise<void> {
  const digest = await uploadFile(daemon, opts.path);
  const r = await fetch(`${daemon.url}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model: opts.model, files: { [opts.name ?? "model.gguf"]: digest }, stream: false, ...opts.extra }),
  });
  if (r.status !== 200) throw new Error(`creating ${opts.model}: ${r.status} ${await r.text()}`);
}

export interface CLIResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `cwd` is the daemon's working directory (the test's own unless given). */
/** `bin`: the `corral` to start (default: this checkout's); `cwd`: where (default: the test's own). */
export async function startDaemon(opts: { home?: string; env?: NodeJS.ProcessEnv; cwd?: string; bin?: string } = {}): Promise<Daemon> {
  const home = opts.home ?? (await mkdtemp(join(tmpdir(), "corral-test-")));
  const modelsDir = join(home, ".corral", "models");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    CORRAL_MODELS: modelsDir,
    CORRAL_HOST: "127.0.0.1:0",
    OLLAMA_HOST: "",
    OLLAMA_MODELS: "",
    ...opts.env,
  };
  const child = spawn(process.execPath, [opts.bin ?? corralBin, "serve"], { env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  trackChild(child);
  // Until it says where it listens or exits: a loaded machine may take long, the test runner bounds that.
  const url = await new Promise<string>((resolveURL, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) resolveURL(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`daemon exited with ${code}:\n${log}`)));
  }).catch(async (e: unknown) => {
    if (!opts.home) await rm(home, { recursive: true, force: true });
    throw e;
  });
  const host = url.replace(/^http:\/\//, "");
  const clientEnv = { ...env, CORRAL_HOST: host };
  return {
    url,
    host,
    home,
    modelsDir,
    env: clientEnv,
    process: child,
    logs: () => log,
    async stop() {
      await stopProcess(child);
      if (!opts.home) await rm(home, { recursive: true, force: true });
    },
  };
}

/** Runs the corral CLI with the daemon's environment; resolves with exit code and output. */
export function runCLI(daemon: Pick<Daemon, "env">, args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CLIResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [corralBin, ...args], {
      cwd: opts.cwd ?? repoRoot,
      env: { ...daemon.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    trackChild(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolveRun({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}

/** One line of the daemon's debug log (CORRAL_DEBUG=1): {"time","level":"debug","msg",…fields}. */
export type DebugEvent = { msg: string } & Record<string, unknown>;

/** The debug events a daemon started with CORRAL_DEBUG=1 has logged so far, oldest first. */
export function debugEvents(daemon: Pick<Daemon, "logs">): DebugEvent[] {
  return daemon
    .logs()
    .split("\n")
    .filter((l) => l.startsWith("{") && l.endsWith("}"))
    .map((l) => JSON.parse(l) as DebugEvent & { level?: string })
    .filter((e) => e.level === "debug");
}

/** The first debug event after the first `skip` that `match` accepts, waiting for the daemon to log it. */
export function waitForDebugEvent(daemon: Daemon, skip: number, match: (e: DebugEvent) => boolean): Promise<DebugEvent> {
  return new Promise((resolveEvent, reject) => {
    const check = (): void => {
      const found = debugEvents(daemon).slice(skip).find(match);
      if (!found) return;
      daemon.process.stderr!.off("data", check);
      daemon.process.off("exit", exited);
      resolveEvent(found);
    };
    const exited = (): void => reject(new Error(`the daemon exited before logging the event:\n${daemon.logs()}`));
    // Listening after startDaemon's own listener, so each chunk is already in logs().
    daemon.process.stderr!.on("data", check);
    daemon.process.once("exit", exited);
    check();
  });
}
