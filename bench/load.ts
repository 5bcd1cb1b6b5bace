// Load on a real corral-registry process (PGlite + filesystem) over loopback: manifest GET storms
// on one model and across many, concurrent pulls of the same and of different models with a client
// that behaves as Ollama's does (manifest, blob GET for its Location, ranged part GETs, digests
// checked), and ranged data GET storms. Reports p50/p99 latency, requests/s and errors, and the
// registry's RSS and open descriptors before, between and after, so leaks show as growth between
// identical rounds. Exits non-zero on any error or leak.
//   npx tsx bench/load.ts [--models 8] [--mb 4] [--seconds 6] [--connections 64] [--pulls 32]

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatPublicKeyLine, generateKeyPair, newNonce, signedAuthorization, tokenRequestChallenge, tokenRequestURL } from "@corral/shared/signing";
import { MediaType } from "@corral/shared/manifest";
import { registryCLI, startRegistry } from "../test/helpers/registry.ts";
import { makeModel, type TestModel } from "../apps/registry/test/support/fixtures.ts";
import { OllamaRegistryClient } from "../apps/registry/test/support/ollama-client.ts";

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const MODELS = arg("models", 8);
const MB = arg("mb", 4);
const SECONDS = arg("seconds", 6);
const CONNECTIONS = arg("connections", 64);
const PULLS = arg("pulls", 32);
const PART = 1 << 20;

// autocannon ships no type declarations; this is the part of its API used here.
interface CannonRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
}
interface CannonResult {
  latency: { p50: number; p99: number; average: number; max: number };
  requests: { average: number; total: number };
  throughput: { average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Cannon = (opts: { url: string; connections: number; duration: number; requests: CannonRequest[]; headers?: Record<string, string> }) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)("autocannon") as Cannon;

interface ProcessState {
  rssMB: number;
  fds: number;
  /** Of those, sockets (listening, database, clients still connected). */
  sockets: number;
}
function processState(pid: number): ProcessState {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  let sockets = 0;
  const fds = readdirSync(`/proc/${pid}/fd`);
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) sockets++;
    } catch {
      // closed while listing
    }
  }
  return { rssMB: Math.round(kb / 102.4) / 10, fds: fds.length, sockets };
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

interface Scenario {
  name: string;
  connections: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  errors: number;
  non2xx: number;
  statusCodes: Record<string, number>;
}

async function storm(name: string, url: string, requests: CannonRequest[], opts: { connections?: number; seconds?: number } = {}): Promise<Scenario> {
  const { connections = CONNECTIONS, seconds = SECONDS } = opts;
  const r = await autocannon({ url, connections, duration: seconds, requests });
  const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]));
  const out: Scenario = {
    name,
    connections,
    seconds,
    requests: r.requests.total,
    requestsPerSecond: round(r.requests.average, 0),
    latencyMs: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max },
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    statusCodes,
  };
  console.log(`${name}: ${out.requestsPerSecond} req/s, p50 ${out.latencyMs.p50} ms, p99 ${out.latencyMs.p99} ms, errors ${out.errors}, non-2xx ${out.non2xx}`);
  return out;
}

interface PullRound {
  name: string;
  concurrent: number;
  pulls: number;
  mbPulled: number;
  seconds: number;
  latencyMs: { p50: number; p99: number; max: number };
  errors: number;
  firstError?: string;
}

async function pullRound(name: string, base: string, key: ReturnType<typeof generateKeyPair>, targets: Array<{ repo: string; model: TestModel }>): Promise<PullRound> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let bytes = 0;
  const started = performance.now();
  await Promise.all(
    targets.map(async ({ repo, model }) => {
      const t0 = performance.now();
      try {
        const client = new OllamaRegistryClient({ base, key, minPartSize: PART, maxPartSize: PART });
        const pulled = await client.pull(repo, "latest");
        for (const [digest, want] of model.blobs) {
          const got = pulled.blobs.get(digest);
          if (!got || `sha256:${createHash("sha256").update(got).digest("hex")}` !== digest || got.length !== want.length) throw new Error(`${repo}: blob ${digest} differs`);
          bytes += got.length;
        }
        latencies.push(performance.now() - t0);
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const out: PullRound = {
    name,
    concurrent: targets.length,
    pulls: targets.length,
    mbPulled: round(bytes / 2 ** 20),
    seconds: round(seconds, 2),
    latencyMs: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)), max: round(Math.max(...latencies)) },
    errors,
    ...(firstError ? { firstError } : {}),
  };
  console.log(`${name}: ${out.pulls} pulls (${out.mbPulled} MB) in ${out.seconds}s, p50 ${out.latencyMs.p50} ms, p99 ${out.latencyMs.p99} ms, errors ${errors}${firstError ? ` (${firstError})` : ""}`);
  return out;
}

async function main(): Promise<void> {
  // Request lines at info would make the bench measure logging to a pipe as much as serving.
  const reg = await startRegistry({ REGISTRY_LOG_LEVEL: "warn" });
  const pid = reg.process.pid!;
  try {
    const key = generateKeyPair();
    const added = await registryCLI(reg, ["user", "add", "bench", "--key", formatPublicKeyLine(key.publicKey)]);
    if (added.code !== 0) throw new Error(`user add: ${added.stderr}`);
    const models = Array.from({ length: MODELS }, () => makeModel(MB * 2 ** 20));
    const repos = models.map((_, i) => `bench/model-${i}`);
    for (let i = 0; i < MODELS; i++) {
      await new OllamaRegistryClient({ base: reg.url, key, minPartSize: 4 * PART, maxPartSize: 4 * PART }).push(repos[i]!, "latest", models[i]!.manifest, models[i]!.blobs);
    }
    // One token for every repository, as a client holding it for its lifetime would.
    const url = tokenRequestURL({ realm: `${reg.url}/v2/token`, service: reg.host, scope: repos.map((r) => `repository:${r}:pull`).join(" "), ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
    const tokenRes = await fetch(url, { headers: { Authorization: signedAuthorization(key, tokenRequestChallenge(url)) } });
    const token = ((await tokenRes.json()) as { token: string }).token;
    const auth = { Authorization: `Bearer ${token}`, Accept: MediaType.manifestV2 };

    const sameManifest: CannonRequest[] = [{ method: "GET", path: `/v2/${repos[0]}/manifests/latest`, headers: auth }];
    // GETs only: autocannon waits for a body after a HEAD answer that carries Content-Length.
    const manyManifests: CannonRequest[] = repos.map((r) => ({ method: "GET", path: `/v2/${r}/manifests/latest`, headers: auth }));
    // The blobs' signed, token-free URLs, as the blob GET hands them out in Location.
    const dataPaths: string[] = [];
    for (let i = 0; i < MODELS; i++) {
      const res = await fetch(`${reg.url}/v2/${repos[i]}/blobs/${models[i]!.manifest.layers[0]!.digest}`, { headers: auth, redirect: "manual" });
      await res.body?.cancel();
      const loc = new URL(res.headers.get("location") ?? "", reg.url);
      dataPaths.push(`${loc.pathname}${loc.search}`);
    }
    const ranged: CannonRequest[] = dataPaths.flatMap((p) =>
      Array.from({ length: MB }, (_, part) => ({ method: "GET", path: p, headers: { Range: `bytes=${part * PART}-${(part + 1) * PART - 1}` } })),
    );

    await storm("warm-up", reg.url, manyManifests, { connections: 16, seconds: 2 });
    // Past the server's 5 s keep-alive timeout, so idle client connections are gone before counting.
    await sleep(6000);
    const before = processState(pid);
    console.log(`registry before: ${before.rssMB} MB RSS, ${before.fds} fds (${before.sockets} sockets)`);

    const scenarios: Scenario[] = [];
    scenarios.push(await storm("manifest GET storm, one model", reg.url, sameManifest));
    scenarios.push(await storm(`manifest GET storm, ${MODELS} models`, reg.url, manyManifests));
    await sleep(6000);
    const afterFirst = processState(pid);

    const pulls: PullRound[] = [];
    for (let rep = 0; rep < 2; rep++) {
      pulls.push(await pullRound(`${PULLS} concurrent pulls of one model (round ${rep + 1})`, reg.url, key, Array.from({ length: PULLS }, () => ({ repo: repos[0]!, model: models[0]! }))));
      pulls.push(await pullRound(`${PULLS} concurrent pulls over ${MODELS} models (round ${rep + 1})`, reg.url, key, Array.from({ length: PULLS }, (_, i) => ({ repo: repos[i % MODELS]!, model: models[i % MODELS]! }))));
    }
    scenarios.push(await storm(`ranged 1 MiB data GETs over ${MODELS} blobs`, reg.url, ranged, { connections: 16 }));

    // The first storm again: memory and descriptors must come back to where that round left them.
    scenarios.push(await storm("manifest GET storm, one model (again)", reg.url, sameManifest));
    scenarios.push(await storm(`manifest GET storm, ${MODELS} models (again)`, reg.url, manyManifests));
    await sleep(6000);
    const after = processState(pid);
    console.log(`registry after first storms: ${afterFirst.rssMB} MB, ${afterFirst.fds} fds; after everything: ${after.rssMB} MB, ${after.fds} fds (${after.sockets} sockets)`);

    // Sockets of idle keep-alive connections stay open for the server's 65 s keep-alive timeout
    // (the pulling client's pool keeps them as long); a leaked one would stay for good.
    const waitStart = Date.now();
    let settled = processState(pid);
    while (settled.sockets > before.sockets && Date.now() - waitStart < 75_000) {
      await sleep(1000);
      settled = processState(pid);
    }
    const socketsClosedAfterS = round((Date.now() - waitStart) / 1000, 0);
    console.log(`after idle keep-alive connections closed (${socketsClosedAfterS}s): ${settled.fds} fds (${settled.sockets} sockets)`);
    const errors = scenarios.reduce((n, s) => n + s.errors + s.non2xx, 0) + pulls.reduce((n, p) => n + p.errors, 0);
    const fdGrowth = settled.fds - before.fds;
    const rssGrowthBetweenRounds = round(after.rssMB - afterFirst.rssMB);
    const ok = errors === 0 && fdGrowth <= 4 && rssGrowthBetweenRounds <= 48;
    const result = {
      date: new Date().toISOString(),
      machine: { node: process.version, cpus: (await import("node:os")).cpus().length },
      setup: { registry: "corral-registry serve, PGlite + filesystem, one process, log level warn, loopback", models: MODELS, modelMB: MB, partBytes: PART, secondsPerStorm: SECONDS, connections: CONNECTIONS, concurrentPulls: PULLS },
      scenarios,
      pulls,
      registryProcess: { before, afterFirstStorms: afterFirst, after, afterKeepAliveClosed: { ...settled, seconds: socketsClosedAfterS }, fdGrowth, rssGrowthBetweenRoundsMB: rssGrowthBetweenRounds },
      errors,
      ok,
    };
    const out = join(fileURLToPath(new URL(".", import.meta.url)), "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "load.json"), `${JSON.stringify(result, null, 2)}\n`);
    console.log(`errors ${errors}, fd growth ${fdGrowth}, RSS growth between identical rounds ${rssGrowthBetweenRounds} MB: ${ok ? "ok" : "FAILED"}`);
    if (!ok) process.exitCode = 1;
  } finally {
    await reg.stop();
  }
}

await main();
