// Blob upload and download throughput and manifest GETs per second: corral-registry (PGlite +
// filesystem, its own process) beside Debian's docker-registry (CNCF Distribution 2.8, filesystem),
// serving the same blobs, in one run, with the same HTTP client.
//   npx tsx bench/registry.ts [--mb 256] [--runs 3] [--seconds 3] [--concurrency 16] [--downloads 3]
//     [--only corral|distribution] [--cpu-prof DIR]   (profile corral-registry; results not written)
//     [--access-log]   (corral-registry logs every request, as it does by default; Distribution's stays off)

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType, encodeConfig } from "@corral/shared/manifest";
import { freePort } from "../test/helpers/ports.ts";
import { dockerRegistryBinary } from "../test/helpers/docker-registry.ts";

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const MB = arg("mb", 256);
const RUNS = arg("runs", 3);
const SECONDS = arg("seconds", 3);
const CONCURRENCY = arg("concurrency", 16);
const DOWNLOADS_PER_BLOB = arg("downloads", 3);
const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const ONLY = flag("only");
const CPU_PROF = flag("cpu-prof");
// Distribution runs with its access log off and errors only; corral-registry likewise unless asked.
const ACCESS_LOG = process.argv.includes("--access-log");
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number): number => Math.round(x * 10) / 10;
const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  pid: number;
  stop(): Promise<void>;
}

/** Waits for `serve` to record its address in the data directory (it logs nothing at level error). */
function waitForServer(child: ChildProcess, dir: string): Promise<string> {
  let log = "";
  const on = (d: Buffer): void => {
    log = (log + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", on);
  child.stderr?.on("data", on);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      if (child.exitCode !== null) return reject(new Error(`corral-registry exited with ${child.exitCode}:\n${log}`));
      try {
        const info = JSON.parse(readFileSync(join(dir, "server.json"), "utf8")) as { url?: string };
        if (info.url) return resolve(info.url);
      } catch {
        // not listening yet
      }
      if (Date.now() - started > 60_000) return reject(new Error(`corral-registry did not start:\n${log}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

async function startDistribution(dir: string): Promise<Target> {
  if (!dockerRegistryBinary()) throw new Error("docker-registry is not installed and apt-get could not install it");
  const port = await freePort();
  const config = join(dir, "config.yml");
  mkdirSync(join(dir, "data"), { recursive: true });
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log: { level: error, accesslog: { disabled: true } }",
      `storage: { filesystem: { rootdirectory: ${join(dir, "data")} }, delete: { enabled: true } }`,
      `http: { addr: 127.0.0.1:${port}, secret: bench-secret }`,
      "",
    ].join("\n"),
  );
  const child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/v2/`)).status === 200) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { name: "docker-registry 2.8 (Distribution)", url, headers: {}, pid: child.pid!, stop: () => stopChild(child) };
}

async function startCorral(dir: string): Promise<Target> {
  const bin = fileURLToPath(new URL("../apps/registry/bin/corral-registry.js", import.meta.url));
  const adminToken = randomBytes(16).toString("hex");
  const env = { ...process.env, REGISTRY_DATA: dir, REGISTRY_ADDR: "127.0.0.1:0", REGISTRY_ADMIN_TOKEN: adminToken, REGISTRY_DEFAULT_VISIBILITY: "public", DATABASE_URL: "", S3_BUCKET: "", REGISTRY_LOG_LEVEL: ACCESS_LOG ? "info" : "error" };
  const profile = CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", CPU_PROF] : [];
  const child = spawn(process.execPath, [...profile, bin, "serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  const url = await waitForServer(child, dir);
  const admin = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${url}/admin${path}`, { method: "POST", headers: { Authorization: `Bearer ${adminToken}` }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  await admin("/users", { name: "bench" });
  const { token } = (await admin("/tokens", { user: "bench", scopes: ["repository:bench/model:pull,push"] })) as { token: string };
  return { name: "corral-registry (PGlite + filesystem)", url, headers: { Authorization: `Bearer ${token}` }, pid: child.pid!, stop: () => stopChild(child) };
}

/** The OCI push flow both registries speak: POST, one PATCH with the whole blob, PUT ?digest=. */
async function upload(t: Target, repo: string, data: Buffer, digest: string): Promise<void> {
  const start = await fetch(`${t.url}/v2/${repo}/blobs/uploads/`, { method: "POST", headers: t.headers });
  if (start.status !== 202) throw new Error(`${t.name}: POST ${start.status} ${await start.text()}`);
  const loc = new URL(start.headers.get("location")!, t.url);
  const patch = await fetch(loc, { method: "PATCH", headers: { ...t.headers, "Content-Type": "application/octet-stream", "Content-Length": String(data.length) }, body: data });
  if (patch.status !== 202) throw new Error(`${t.name}: PATCH ${patch.status} ${await patch.text()}`);
  const next = new URL(patch.headers.get("location")!, t.url);
  next.searchParams.set("digest", digest);
  const put = await fetch(next, { method: "PUT", headers: t.headers });
  if (put.status !== 201) throw new Error(`${t.name}: PUT ${put.status} ${await put.text()}`);
}

async function download(t: Target, repo: string, digest: string): Promise<number> {
  const res = await fetch(`${t.url}/v2/${repo}/blobs/${digest}`, { headers: t.headers });
  if (res.status !== 200) throw new Error(`${t.name}: GET blob ${res.status}`);
  let n = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) n += chunk.length;
  return n;
}

async function manifestRate(t: Target, repo: string): Promise<{ rate: number; count: number }> {
  const deadline = performance.now() + SECONDS * 1000;
  let count = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const res = await fetch(`${t.url}/v2/${repo}/manifests/latest`, { headers: { ...t.headers, Accept: MediaType.manifestV2 } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${t.name}: GET manifest ${res.status}`);
      count++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { rate: count / ((performance.now() - start) / 1000), count };
}

interface Result {
  name: string;
  uploadMBps: number;
  downloadMBps: number;
  manifestGetsPerSecond: number;
  /** Server CPU (user + system) per manifest GET and per GB sent: steadier than rates on a shared machine. */
  serverCpuMsPerManifestGet: number;
  serverCpuSecondsPerGBUploaded: number;
  serverCpuSecondsPerGBDownloaded: number;
}

const TICK_MS = 1000 / Number(spawnSync("getconf", ["CLK_TCK"]).stdout.toString().trim() || 100);

/** CPU milliseconds (user + system) the process has used so far, from /proc. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

interface Samples {
  up: number[];
  upCpuMs: number;
  upBytes: number;
  down: number[];
  rates: number[];
  downCpuMs: number;
  downBytes: number;
  manifestCpuMs: number;
  manifestGets: number;
}

const REPO = "bench/model";

async function pushManifest(t: Target, blobs: Buffer[]): Promise<void> {
  const config = encodeConfig({ model_format: "gguf", model_family: "llama", model_families: ["llama"], model_type: "bench", file_type: "F16", architecture: "amd64", os: "linux" });
  await upload(t, REPO, config, sha256Bytes(config));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.manifestV2,
    config: { mediaType: MediaType.config, digest: sha256Bytes(config), size: config.length },
    layers: blobs.map((b) => ({ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", digest: sha256Bytes(b), size: b.length })),
  });
  const put = await fetch(`${t.url}/v2/${REPO}/manifests/latest`, { method: "PUT", headers: { ...t.headers, "Content-Type": MediaType.manifestV2 }, body: manifest });
  if (put.status !== 201) throw new Error(`${t.name}: manifest PUT ${put.status} ${await put.text()}`);
}

/**
 * Both servers run side by side and take turns on every measurement, so a burst of load from
 * elsewhere on the machine lands on both rather than on whichever happened to run second.
 */
async function measure(targets: Target[], blobs: Buffer[]): Promise<Result[]> {
  const samples = targets.map((): Samples => ({ up: [], upCpuMs: 0, upBytes: 0, down: [], rates: [], downCpuMs: 0, downBytes: 0, manifestCpuMs: 0, manifestGets: 0 }));
  // Alternating which server goes first, so neither always meets a cold or a busy moment.
  const turns = (i: number): Array<[number, Target]> => (i % 2 === 0 ? [...targets.entries()] : [...targets.entries()].reverse());
  for (const [i, data] of blobs.entries()) {
    const digest = sha256Bytes(data);
    for (const [k, t] of turns(i)) {
      const sm = samples[k]!;
      const cpu0 = cpuMs(t.pid);
      const s = performance.now();
      await upload(t, REPO, data, digest);
      sm.up.push(data.length / 1e6 / ((performance.now() - s) / 1000));
      sm.upCpuMs += cpuMs(t.pid) - cpu0;
      sm.upBytes += data.length;
    }
    // One download is a fraction of a second: several per blob make the median steadier.
    for (let d = 0; d < DOWNLOADS_PER_BLOB; d++) {
      for (const [k, t] of turns(i + d)) {
        const sm = samples[k]!;
        const cpu0 = cpuMs(t.pid);
        const s = performance.now();
        const n = await download(t, REPO, digest);
        if (n !== data.length) throw new Error(`${t.name}: downloaded ${n} of ${data.length} bytes`);
        sm.down.push(n / 1e6 / ((performance.now() - s) / 1000));
        sm.downCpuMs += cpuMs(t.pid) - cpu0;
        sm.downBytes += n;
      }
    }
  }
  for (const t of targets) {
    await pushManifest(t, blobs);
    await manifestRate(t, REPO); // warm-up
  }
  for (let i = 0; i < RUNS; i++) {
    for (const [k, t] of turns(i)) {
      const sm = samples[k]!;
      const cpu0 = cpuMs(t.pid);
      const { rate, count } = await manifestRate(t, REPO);
      sm.manifestCpuMs += cpuMs(t.pid) - cpu0;
      sm.manifestGets += count;
      sm.rates.push(rate);
    }
  }
  return targets.map((t, k) => {
    const sm = samples[k]!;
    return {
      name: t.name,
      uploadMBps: round(median(sm.up)),
      downloadMBps: round(median(sm.down)),
      manifestGetsPerSecond: Math.round(median(sm.rates)),
      serverCpuMsPerManifestGet: Math.round((sm.manifestCpuMs / sm.manifestGets) * 1000) / 1000,
      serverCpuSecondsPerGBUploaded: Math.round((sm.upCpuMs / 1000 / (sm.upBytes / 1e9)) * 1000) / 1000,
      serverCpuSecondsPerGBDownloaded: Math.round((sm.downCpuMs / 1000 / (sm.downBytes / 1e9)) * 1000) / 1000,
    };
  });
}

const work = mkdtempSync(join(tmpdir(), "corral-bench-registry-"));
const targets: Target[] = [];
try {
  // Distinct blobs per run, the same set for both registries.
  const blobs = Array.from({ length: RUNS }, () => randomBytes(MB * 1024 * 1024));
  const starters = { distribution: startDistribution, corral: startCorral };
  for (const [name, start] of Object.entries(starters)) {
    if (ONLY && ONLY !== name) continue;
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    targets.push(await start(dir));
  }
  const results = await measure(targets, blobs);
  if (results.length === 2 && !CPU_PROF) report(results as [Result, Result]);
  else console.log(JSON.stringify(results, null, 2));
} finally {
  for (const t of targets) await t.stop();
  rmSync(work, { recursive: true, force: true });
}

function report([dist, corral]: [Result, Result]): void {
  const out = {
    blobMiB: MB,
    runs: RUNS,
    manifestConcurrency: CONCURRENCY,
    manifestSeconds: SECONDS,
    downloadsPerBlob: DOWNLOADS_PER_BLOB,
    accessLogs: ACCESS_LOG ? "corral-registry on, Distribution off" : "off for both",
    note: "loopback, client and servers share the machine, both servers run at once and alternate; MB/s = 10^6 bytes per second; medians",
    distribution: dist,
    corral,
    ratio: {
      upload: ratio(corral.uploadMBps, dist.uploadMBps),
      download: ratio(corral.downloadMBps, dist.downloadMBps),
      manifestGets: ratio(corral.manifestGetsPerSecond, dist.manifestGetsPerSecond),
    },
  };
  const file = fileURLToPath(new URL("./results/registry.json", import.meta.url));
  writeFileSync(file, JSON.stringify(out, null, 2) + "\n");
  console.log(JSON.stringify(out, null, 2));
}
