// Blob upload and download throughput and manifest GETs per second: corral-registry (PGlite +
// filesystem, its own process) beside Debian's docker-registry (CNCF Distribution 2.8, filesystem),
// serving the same blobs, in one run, with the same HTTP client.
//   npx tsx bench/registry.ts [--mb 256] [--runs 3] [--seconds 3] [--concurrency 16]

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType, encodeConfig } from "@corral/shared/manifest";
import { freePort } from "../test/helpers/ports.ts";

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const MB = arg("mb", 256);
const RUNS = arg("runs", 3);
const SECONDS = arg("seconds", 3);
const CONCURRENCY = arg("concurrency", 16);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number): number => Math.round(x * 10) / 10;

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  stop(): Promise<void>;
}

function waitFor(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${log}`)), 60_000);
    const on = (d: Buffer): void => {
      log += d.toString();
      const m = pattern.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] ?? "");
      }
    };
    child.stdout?.on("data", on);
    child.stderr?.on("data", on);
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}:\n${log}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

async function startDistribution(dir: string): Promise<Target> {
  if (spawnSync("sh", ["-c", "command -v docker-registry"]).status !== 0) {
    const r = spawnSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry"], { stdio: "inherit" });
    if (r.status !== 0) throw new Error("docker-registry is not installed and apt-get could not install it");
  }
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
  return { name: "docker-registry 2.8 (Distribution)", url, headers: {}, stop: () => stopChild(child) };
}

async function startCorral(dir: string): Promise<Target> {
  const bin = fileURLToPath(new URL("../apps/registry/bin/corral-registry.js", import.meta.url));
  const adminToken = randomBytes(16).toString("hex");
  const env = { ...process.env, REGISTRY_DATA: dir, REGISTRY_ADDR: "127.0.0.1:0", REGISTRY_ADMIN_TOKEN: adminToken, REGISTRY_DEFAULT_VISIBILITY: "public", DATABASE_URL: "", S3_BUCKET: "" };
  const child = spawn(process.execPath, [bin, "serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  const url = await waitFor(child, /listening on (http:\/\/\S+)/, "corral-registry");
  const admin = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${url}/admin${path}`, { method: "POST", headers: { Authorization: `Bearer ${adminToken}` }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  await admin("/users", { name: "bench" });
  const { token } = (await admin("/tokens", { user: "bench", scopes: ["repository:bench/model:pull,push"] })) as { token: string };
  return { name: "corral-registry (PGlite + filesystem)", url, headers: { Authorization: `Bearer ${token}` }, stop: () => stopChild(child) };
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

async function manifestRate(t: Target, repo: string): Promise<number> {
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
  return count / ((performance.now() - start) / 1000);
}

interface Result {
  name: string;
  uploadMBps: number;
  downloadMBps: number;
  manifestGetsPerSecond: number;
}

async function measure(t: Target, blobs: Buffer[]): Promise<Result> {
  const repo = "bench/model";
  const up: number[] = [];
  const down: number[] = [];
  for (const data of blobs) {
    const digest = sha256Bytes(data);
    let s = performance.now();
    await upload(t, repo, data, digest);
    up.push(data.length / 1e6 / ((performance.now() - s) / 1000));
    s = performance.now();
    const n = await download(t, repo, digest);
    if (n !== data.length) throw new Error(`${t.name}: downloaded ${n} of ${data.length} bytes`);
    down.push(n / 1e6 / ((performance.now() - s) / 1000));
  }
  const config = encodeConfig({ model_format: "gguf", model_family: "llama", model_families: ["llama"], model_type: "bench", file_type: "F16", architecture: "amd64", os: "linux" });
  await upload(t, repo, config, sha256Bytes(config));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.manifestV2,
    config: { mediaType: MediaType.config, digest: sha256Bytes(config), size: config.length },
    layers: blobs.map((b) => ({ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", digest: sha256Bytes(b), size: b.length })),
  });
  const put = await fetch(`${t.url}/v2/${repo}/manifests/latest`, { method: "PUT", headers: { ...t.headers, "Content-Type": MediaType.manifestV2 }, body: manifest });
  if (put.status !== 201) throw new Error(`${t.name}: manifest PUT ${put.status} ${await put.text()}`);
  await manifestRate(t, repo); // warm-up
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) rates.push(await manifestRate(t, repo));
  return { name: t.name, uploadMBps: round(median(up)), downloadMBps: round(median(down)), manifestGetsPerSecond: Math.round(median(rates)) };
}

const work = mkdtempSync(join(tmpdir(), "corral-bench-registry-"));
try {
  // Distinct blobs per run, the same set for both registries.
  const blobs = Array.from({ length: RUNS }, () => randomBytes(MB * 1024 * 1024));
  const results: Result[] = [];
  for (const start of [startDistribution, startCorral]) {
    const dir = join(work, String(results.length));
    mkdirSync(dir, { recursive: true });
    const t = await start(dir);
    try {
      results.push(await measure(t, blobs));
    } finally {
      await t.stop();
    }
  }
  const [dist, corral] = results as [Result, Result];
  const out = {
    blobMiB: MB,
    runs: RUNS,
    manifestConcurrency: CONCURRENCY,
    manifestSeconds: SECONDS,
    note: "loopback, client and servers share the machine; MB/s = 10^6 bytes per second; medians",
    distribution: dist,
    corral,
    ratio: {
      upload: round((corral.uploadMBps / dist.uploadMBps) * 100) / 100,
      download: round((corral.downloadMBps / dist.downloadMBps) * 100) / 100,
      manifestGets: round((corral.manifestGetsPerSecond / dist.manifestGetsPerSecond) * 100) / 100,
    },
  };
  const file = fileURLToPath(new URL("./results/registry.json", import.meta.url));
  writeFileSync(file, JSON.stringify(out, null, 2) + "\n");
  console.log(JSON.stringify(out, null, 2));
} finally {
  rmSync(work, { recursive: true, force: true });
}
