// Start-up of the two programs, side by side in one run with `node -e 0` (the floor any Node
// program starts from): `corral --version` and `corral list` against a running daemon,
// `corral-registry --help`, the daemon ready to answer, the embedded registry ready on a fresh and
// on an existing data directory, and the registry's resident memory once idle. The programs run as
// built (npm run build): compiled JavaScript, as installed.
//   npm run build && node --import tsx bench/startup.ts [--rounds 9]
// Each round runs `node -e 0` and then each measurement, so the ratios compare neighbours and hold
// when the machine's speed drifts; medians (and min–max) over the rounds are reported.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { corralBin, repoRoot } from "../test/helpers/daemon.ts";
import { registryBin } from "../test/helpers/registry.ts";
import { freePort } from "../test/helpers/ports.ts";
import { idleMemory, startRegistryTimed, stopRegistry } from "./registry-startup.ts";

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg("rounds", 9);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, d = 3): number => Number(x.toFixed(d));

/** Wall seconds of a command run to its end. */
function timeCommand(args: string[], env: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited with ${r.status}: ${r.stderr.toString()}`);
  return s;
}

async function answers(url: string): Promise<boolean> {
  return fetch(url).then((r) => (r.body?.cancel(), true)).catch(() => false);
}

/** Starts a server and returns the seconds until `url` answers; the process keeps running. */
async function timeReady(args: string[], env: NodeJS.ProcessEnv, url: string): Promise<{ seconds: number; child: ChildProcess }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { env, stdio: "ignore" });
  // Poll often: the figure is the first answer, within a millisecond or two.
  while (!(await answers(url))) {
    if (child.exitCode !== null) throw new Error(`${args.join(" ")} exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return { seconds: (performance.now() - t0) / 1000, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

interface Series {
  what: string;
  seconds: number[];
  /** Each round's figure over that round's `node -e 0`. */
  ratios: number[];
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "corral-startup-"));
  const daemonPort = await freePort();
  const daemonEnv = { ...process.env, HOME: join(work, "home"), CORRAL_HOST: `127.0.0.1:${daemonPort}`, OLLAMA_HOST: "", CORRAL_MODELS: "", OLLAMA_MODELS: "" };
  const series = new Map<string, Series>();
  const add = (what: string, seconds: number, floor: number): void => {
    const s = series.get(what) ?? { what, seconds: [], ratios: [] };
    s.seconds.push(seconds);
    s.ratios.push(seconds / floor);
    series.set(what, s);
  };
  const rss: number[] = [];
  const floors: number[] = [];
  // The daemon that `corral --version` and `corral list` talk to, started once.
  const daemon = await timeReady([corralBin, "serve"], daemonEnv, `http://127.0.0.1:${daemonPort}/`);
  try {
    for (let r = 0; r <= ROUNDS; r++) {
      const floor = timeCommand(["-e", "0"], process.env);
      const version = timeCommand([corralBin, "--version"], daemonEnv);
      const list = timeCommand([corralBin, "list"], daemonEnv);
      const help = timeCommand([registryBin, "--help"], process.env);

      const ownPort = await freePort();
      const ownEnv = { ...daemonEnv, HOME: join(work, `home-${r}`), CORRAL_HOST: `127.0.0.1:${ownPort}` };
      const d = await timeReady([corralBin, "serve"], ownEnv, `http://127.0.0.1:${ownPort}/`);
      await stop(d.child);

      const data = join(work, `registry-${r}`);
      const fresh = await startRegistryTimed(data);
      await stopRegistry(fresh.child);
      const existing = await startRegistryTimed(data);
      const idle = await idleMemory(existing);
      await stopRegistry(existing.child);
      await rm(data, { recursive: true, force: true });
      await rm(join(work, `home-${r}`), { recursive: true, force: true });

      if (r === 0) continue; // warm-up: page cache, npm's and node's compile caches
      floors.push(floor);
      add("corral --version", version, floor);
      add("corral list", list, floor);
      add("corral-registry --help", help, floor);
      add("daemon ready", d.seconds, floor);
      add("registry ready, fresh data directory", fresh.seconds, floor);
      add("registry ready, existing data directory", existing.seconds, floor);
      rss.push(idle.rssMB);
      process.stderr.write(`round ${r}/${ROUNDS}: node -e 0 ${floor.toFixed(3)} s, --version ${version.toFixed(3)}, list ${list.toFixed(3)}, registry --help ${help.toFixed(3)}, daemon ready ${d.seconds.toFixed(3)}, registry fresh ${fresh.seconds.toFixed(3)} / existing ${existing.seconds.toFixed(3)}, idle RSS ${idle.rssMB.toFixed(0)} MB (heap ${idle.heapUsedMB.toFixed(0)}, external ${idle.externalMB.toFixed(0)})\n`);
    }
  } finally {
    await stop(daemon.child);
    await rm(work, { recursive: true, force: true });
  }
  const result = {
    machine: `${cpus()[0]?.model ?? "unknown"}, ${cpus().length} threads`,
    node: process.version,
    rounds: ROUNDS,
    floor: { what: "node -e 0", medianSeconds: round(median(floors)), min: round(Math.min(...floors)), max: round(Math.max(...floors)) },
    figures: [...series.values()].map((s) => ({
      what: s.what,
      medianSeconds: round(median(s.seconds)),
      min: round(Math.min(...s.seconds)),
      max: round(Math.max(...s.seconds)),
      medianRatioToNode: round(median(s.ratios), 2),
    })),
    registryIdleRSS: { medianMB: Math.round(median(rss)), minMB: Math.round(Math.min(...rss)), maxMB: Math.round(Math.max(...rss)) },
  };
  console.log(JSON.stringify(result, null, 2));
  await writeFile(join(repoRoot, "bench/results/startup.json"), JSON.stringify(result, null, 2) + "\n");
}

await main();
