// Start-up of `corral-registry serve` on the embedded database, as built (npm run build): how long
// until it is ready (GET /v2/ answers, GET /readyz answers 200) on a fresh data directory and on an
// existing one, where that time went (each step as the registry logs it, `startup_ms`), and the
// memory it holds once idle (resident, and the process's own split: JavaScript heap, and external,
// which holds PGlite's WebAssembly memory). Each round also times `node -e 0`, the floor any Node
// program starts from, so that figures from a busy machine can be read as ratios.
//   npm run build && node --import tsx bench/registry-startup.ts [--rounds 7] [--cpu-prof DIR] [--bin PATH]
// --cpu-prof writes a V8 profile of each registry start into DIR; --bin runs another build's
// bin/corral-registry.js (an older commit's, to compare). Either way the figures are not saved.
// bench/startup.ts can reuse `startRegistryTimed` and `idleMemory` for its own table.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { registryBin } from "../test/helpers/registry.ts";
import { freePort } from "../test/helpers/ports.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, d = 3): number => Number(x.toFixed(d));

export interface TimedStart {
  /** Seconds from spawning the process until /v2/ answered and /readyz answered 200. */
  seconds: number;
  /** CPU seconds (user and system, all threads) the process had used by then: steadier than wall time on a busy machine. */
  cpuSeconds: number;
  /** The `startup_ms` fields of the registry's "listening" log line. */
  steps: Record<string, number>;
  child: ChildProcess;
  url: string;
}

async function status(url: string): Promise<number> {
  return fetch(url).then(
    async (r) => (await r.arrayBuffer(), r.status),
    () => 0,
  );
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** utime + stime from /proc/<pid>/stat, in clock ticks of 1/100 s (Linux's USER_HZ). */
async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Starts `serve` on `dataDir` (PGlite and files) and waits until it is ready. */
export async function startRegistryTimed(dataDir: string, opts: { bin?: string; nodeArgs?: string[] } = {}): Promise<TimedStart> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...process.env, REGISTRY_ADDR: `127.0.0.1:${port}`, REGISTRY_DATA: dataDir, REGISTRY_URL: "", DATABASE_URL: "", S3_BUCKET: "", REGISTRY_LOG_LEVEL: "info" };
  const t0 = performance.now();
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.bin ?? registryBin, "serve"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const logged = new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      log = (log + d.toString()).slice(-100_000);
      if (log.includes('"startup_ms"')) resolve();
    });
    child.once("exit", (code) => reject(new Error(`corral-registry exited with ${code}:\n${log}`)));
  });
  logged.catch(() => {});
  // Polls with bare TCP connects until the port accepts, then asks over HTTP: a refused connect
  // costs the polling process next to nothing, where an HTTP client polling every few milliseconds
  // would take CPU from the start it is timing on a two-core machine. (The log line that says the
  // registry listens is no signal: the logger writes it from Node's thread pool, which the
  // database's WebAssembly compilation can keep busy for a while after the port is open.)
  while (!(await accepts(port))) {
    if (child.exitCode !== null) await logged;
    await new Promise((r) => setTimeout(r, 2));
  }
  // /v2/ answers 401 to a client without a token: any answer means the routes are up.
  while (!((await status(`${url}/v2/`)) > 0 && (await status(`${url}/readyz`)) === 200)) {
    if (child.exitCode !== null) await logged;
    await new Promise((r) => setTimeout(r, 2));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = await cpuSecondsOf(child.pid!);
  await logged;
  let steps: Record<string, number> = {};
  for (const line of log.split("\n")) {
    try {
      const fields = JSON.parse(line) as { startup_ms?: Record<string, number> };
      if (fields.startup_ms) steps = fields.startup_ms;
    } catch {
      // not a JSON line
    }
  }
  return { seconds, cpuSeconds, steps, child, url };
}

export async function stopRegistry(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

export interface IdleMemory {
  rssMB: number;
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
}

/** After the requests a client makes first and two quiet seconds: VmRSS, and the split /metrics reports. */
export async function idleMemory(start: TimedStart): Promise<IdleMemory> {
  for (const path of ["/v2/", "/v2/_catalog", "/", "/healthz", "/readyz"]) await status(`${start.url}${path}`);
  await new Promise((r) => setTimeout(r, 2000));
  const proc = await readFile(`/proc/${start.child.pid}/status`, "utf8");
  const metrics = await fetch(`${start.url}/metrics`).then((r) => r.text());
  const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN) / 2 ** 20;
  return {
    rssMB: Number(/VmRSS:\s+(\d+)/.exec(proc)![1]) / 1024,
    heapUsedMB: gauge("nodejs_heap_size_used_bytes"),
    heapTotalMB: gauge("nodejs_heap_size_total_bytes"),
    externalMB: gauge("nodejs_external_memory_bytes"),
  };
}

function floorSeconds(): number {
  const t0 = performance.now();
  spawnSync(process.execPath, ["-e", "0"], { stdio: "ignore" });
  return (performance.now() - t0) / 1000;
}

const summary = (xs: number[], d = 3) => ({ median: round(median(xs), d), min: round(Math.min(...xs), d), max: round(Math.max(...xs), d) });

async function main(): Promise<void> {
  const argValue = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const rounds = Number(argValue("rounds") ?? 7);
  const profileDir = argValue("cpu-prof");
  const nodeArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  // Another build of the registry (an older checkout's, to compare); its figures are not saved.
  const bin = argValue("bin");
  const work = await mkdtemp(join(tmpdir(), "corral-registry-startup-"));
  const floors: number[] = [];
  const fresh: number[] = [];
  const existing: number[] = [];
  const freshCpu: number[] = [];
  const existingCpu: number[] = [];
  const freshSteps: Record<string, number>[] = [];
  const existingSteps: Record<string, number>[] = [];
  const memory: IdleMemory[] = [];
  try {
    // Round 0 warms the page cache and is not counted.
    for (let r = 0; r <= rounds; r++) {
      const floor = floorSeconds();
      const data = join(work, `data-${r}`);
      const a = await startRegistryTimed(data, { bin, nodeArgs });
      await stopRegistry(a.child);
      const b = await startRegistryTimed(data, { bin, nodeArgs });
      const idle = await idleMemory(b);
      await stopRegistry(b.child);
      await rm(data, { recursive: true, force: true });
      if (r === 0) continue;
      floors.push(floor);
      fresh.push(a.seconds);
      existing.push(b.seconds);
      freshCpu.push(a.cpuSeconds);
      existingCpu.push(b.cpuSeconds);
      freshSteps.push(a.steps);
      existingSteps.push(b.steps);
      memory.push(idle);
      process.stderr.write(
        `round ${r}/${rounds}: node -e 0 ${floor.toFixed(3)} s; ready fresh ${a.seconds.toFixed(3)} s (CPU ${a.cpuSeconds.toFixed(2)}) ${JSON.stringify(a.steps)}; ` +
          `existing ${b.seconds.toFixed(3)} s (CPU ${b.cpuSeconds.toFixed(2)}) ${JSON.stringify(b.steps)}; idle RSS ${idle.rssMB.toFixed(0)} MB ` +
          `(heap ${idle.heapUsedMB.toFixed(0)}/${idle.heapTotalMB.toFixed(0)}, external ${idle.externalMB.toFixed(0)})\n`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const stepMedians = (all: Record<string, number>[]) => Object.fromEntries(Object.keys(all[0] ?? {}).map((k) => [k, median(all.map((s) => s[k] ?? NaN))]));
  const result = {
    machine: `${cpus()[0]?.model ?? "unknown"}, ${cpus().length} threads`,
    node: process.version,
    rounds,
    floorSeconds: summary(floors),
    readyFreshSeconds: { ...summary(fresh), medianRatioToNode: round(median(fresh.map((s, i) => s / floors[i]!)), 2), cpuSeconds: summary(freshCpu, 2), stepsMs: stepMedians(freshSteps) },
    readyExistingSeconds: { ...summary(existing), medianRatioToNode: round(median(existing.map((s, i) => s / floors[i]!)), 2), cpuSeconds: summary(existingCpu, 2), stepsMs: stepMedians(existingSteps) },
    idleMB: {
      rss: summary(memory.map((m) => m.rssMB), 0),
      heapUsed: summary(memory.map((m) => m.heapUsedMB), 0),
      heapTotal: summary(memory.map((m) => m.heapTotalMB), 0),
      external: summary(memory.map((m) => m.externalMB), 0),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  if (!profileDir && !bin) await writeFile(join(repoRoot, "bench/results/registry-startup.json"), JSON.stringify(result, null, 2) + "\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
