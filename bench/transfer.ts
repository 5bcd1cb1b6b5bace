// Push and pull of a 1 GB model over loopback, timed through the daemon's API as a user meets them
// (POST /api/push, POST /api/pull, each until its "success"), side by side with `openssl dgst
// -sha256` of the same file from the page cache, measured in the same round: a push or a pull
// cannot be faster than hashing the bytes once, which both must do.
//   npm run bench:transfer -- [--mb 1024] [--rounds 3] [--registry corral,corral-s3,distribution] [--cold]
// (results in bench/results/transfer.json, or transfer-<MB>mb.json for another size)
// corral: Corral's registry on the embedded defaults (PGlite, filesystem blobs); corral-s3: the
// same with blobs in an S3-compatible server (s3rver, itself a Node process, so its figures say
// more about s3rver than about the registry); distribution: Debian's docker-registry, for the
// daemon's side alone; among the references, a plain Node http client sending a fresh Distribution
// the same file in one monolithic PUT: Distribution's own pace at receiving it.
//
// Beside them, the disk's own part, with `dd` on the same filesystem: a durable write of the file
// (past the page cache, flushed at the end), which is what a push asks of the disk, and the same
// write while another copy is read back past the cache, which is what a pull over loopback asks of
// it (the registry reads its copy of the blob while the daemon writes its own). On a virtual machine
// the two compete for one virtual disk, and neither can be faster than the disk alone.
//
// And the least a registry in Node must do with the bytes (lib/http-hash-floor.ts): Node's http
// module receiving the file from another Node process over loopback and hashing it, writing
// nothing. A push takes at least that and the durable write, each on a core of its own; on a
// machine with two cores the pushing daemon and the kernel's network and disk work share them.
//
// Each round starts a fresh registry and a fresh pulling daemon, and warms them as a registry and a
// daemon in service are warm: before the timed transfers the registry receives and serves a 100 MB
// model of other bytes, and the pulling daemon pulls it. The first transfer after a start also
// compiles the hot paths, starts the threads and faults in the buffers (the first 100 MB chunk of
// a push took 200-270 ms instead of 100-150); `--cold` leaves the warm-up out and measures that
// (results in transfer-cold.json). The timed pull takes the hash window the warm-up's pull left,
// as a pull within a minute of another does (prefix-hasher.ts). The references (openssl, dd, the http
// floor) are timed, as many rounds of them, once every transfer of the run is done: a push or a
// pull does not follow gigabytes of other durable writes. Every phase starts after `sync`
// (no dirty pages from the phase before are written back during it) with the blob in the page
// cache. CPU seconds per GB are read from /proc for the pushing daemon, the pulling daemon and
// Corral's registry; they vary far less than wall time on a shared machine. Medians are reported.
//
// An earlier version of this benchmark waited before each phase until the virtual machine had
// handed its freed memory back to the host, so that every page the phase wrote cost a fault on
// the host (2-3.5 s of system time per GB, billed to whichever process wrote): it measured the
// machine's memory ballooning more than the transfer, and reported half the speed a user sees.
import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, stat, writeFile, readFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import { execFile, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { sha256File, sha256Bytes } from "@corral/shared/digest";
import { encodeConfig, encodeManifest, MediaType } from "@corral/shared/manifest";
import { startDaemon, type Daemon } from "../test/helpers/daemon.ts";
import { startDockerRegistry } from "../test/helpers/docker-registry.ts";
import { startRegistry, registryCLI, type RegistryProcess } from "../test/helpers/registry.ts";
import { startS3, type S3Server } from "../test/helpers/s3.ts";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const MB = Number(arg("mb") ?? 1024);
const ROUNDS = Number(arg("rounds") ?? 3);
type Target = "corral" | "corral-s3" | "distribution";
const COLD = process.argv.includes("--cold");
const WARM_MB = 100;
const TARGETS = (arg("registry") ?? "corral,distribution,corral-s3").split(",") as Target[];
for (const t of TARGETS) if (!["corral", "corral-s3", "distribution"].includes(t)) throw new Error(`--registry ${t}: expected corral, corral-s3 or distribution`);

async function writeRandom(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = 8 << 20;
  for (let done = 0; done < bytes; done += chunk) {
    if (!out.write(randomBytes(Math.min(chunk, bytes - done)))) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
}

/** Puts a model made of one big blob straight into a daemon's store. */
async function seedModel(d: Daemon, blob: { path: string; digest: string; size: number }, name: [string, string, string, string]): Promise<void> {
  const { path: blobPath, digest, size } = blob;
  await mkdir(join(d.modelsDir, "blobs"), { recursive: true });
  await pipeline(createReadStream(blobPath), createWriteStream(join(d.modelsDir, "blobs", digest.replace(":", "-"))));
  const config = encodeConfig({ model_format: "gguf", model_family: "bench", model_families: ["bench"], model_type: "", file_type: "", architecture: "amd64", os: "linux" });
  const configDigest = sha256Bytes(config);
  await writeFile(join(d.modelsDir, "blobs", configDigest.replace(":", "-")), config);
  const manifest = encodeManifest({
    schemaVersion: 2,
    mediaType: MediaType.manifestV2,
    config: { mediaType: MediaType.config, digest: configDigest, size: config.length },
    layers: [{ mediaType: MediaType.model, digest, size }],
  });
  const dir = join(d.modelsDir, "manifests", ...name.slice(0, 3));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name[3]), manifest);
}

/** No dirty pages left to write back, and `cached` in the page cache. */
function settle(cached: string): void {
  execFileSync("sync");
  execFileSync("sh", ["-c", `cat "${cached}" > /dev/null`]);
}

/** Seconds `fn` takes, started after settle(). */
async function timed(cached: string, fn: () => Promise<void>): Promise<number> {
  settle(cached);
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

const run = promisify(execFile);

/** `dd` with `args`, past the page cache where the filesystem allows it (tmpfs refuses O_DIRECT). */
async function dd(args: string[]): Promise<void> {
  try {
    await run("dd", [...args, "bs=1M", "status=none"]);
  } catch {
    await run("dd", [...args.filter((a) => !/^[io]flag=direct$/.test(a)), "bs=1M", "status=none"]);
  }
}

/** What a push asks of the disk: `from` (cached) written to `to`, flushed before it ends. */
const durableWrite = (from: string, to: string): Promise<void> => dd([`if=${from}`, `of=${to}`, "oflag=direct", "conv=fdatasync"]);

/** What a pull over loopback asks of it: the same, while `other` (not cached) is read back. */
const durableWriteWhileReading = async (from: string, to: string, other: string): Promise<void> =>
  void (await Promise.all([durableWrite(from, to), dd([`if=${other}`, "of=/dev/null", "iflag=direct"])]));

const FLOOR = new URL("./lib/http-hash-floor.ts", import.meta.url).pathname;

/** Seconds Node's http module takes to receive `file` over loopback and hash it, and the receiver's CPU seconds. */
async function httpHashFloor(file: string, digest: string): Promise<{ seconds: number; receiverCPU: number }> {
  const server = spawn(process.execPath, ["--import", "tsx", FLOOR, "serve"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const exited = once(server, "exit").then(() => {
      throw new Error("the receiver of the HTTP floor ended before it printed its port");
    });
    const [port] = (await Promise.race([once(createInterface({ input: server.stdout }), "line"), exited])) as [string];
    const cpu0 = cpuSeconds(server.pid)[0];
    const { stdout } = await run(process.execPath, ["--import", "tsx", FLOOR, "send", port, file, digest]);
    return { seconds: Number(stdout.trim()), receiverCPU: cpuSeconds(server.pid)[0] - cpu0 };
  } finally {
    server.kill();
  }
}

/**
 * Sends `file` to Distribution in one monolithic PUT from Node's http client, and resolves once it
 * answered 201: Distribution's own pace at receiving a blob, beside the daemon's push to it.
 */
async function putStraight(host: string, file: string, digest: string): Promise<void> {
  const start = await fetch(`http://${host}/v2/bench/straight/blobs/uploads/`, { method: "POST" });
  const location = start.headers.get("location");
  if (start.status !== 202 || !location) throw new Error(`starting an upload on ${host}: ${start.status}`);
  const url = new URL(location, `http://${host}`);
  url.searchParams.set("digest", digest);
  const { size } = await stat(file);
  await new Promise<void>((resolve, reject) => {
    const put = request(url, { method: "PUT", headers: { "Content-Type": "application/octet-stream", "Content-Length": String(size) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 201 ? resolve() : reject(new Error(`the PUT to ${host} was answered ${res.statusCode}`))));
    });
    put.on("error", reject);
    createReadStream(file, { highWaterMark: 1 << 20 })
      .on("error", reject)
      .pipe(put);
  });
}

async function api(d: Daemon, path: string, body: unknown): Promise<void> {
  const r = await fetch(`${d.url}${path}`, { method: "POST", body: JSON.stringify({ ...(body as object), stream: false }) });
  const j = (await r.json()) as { status?: string; error?: string };
  if (!r.ok || j.status !== "success") throw new Error(`${path}: ${j.error ?? r.status}`);
}

/** The fields of /proc/<pid>/stat after the command's name (the first is the state), as numbers; every thread's, finished ones too. */
function procStat(pid: number): number[] {
  return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ").map(Number);
}

/** CPU seconds a process has used so far: user + system, and system. */
function cpuSeconds(pid: number | undefined): [number, number] {
  if (!pid) return [0, 0];
  const fields = procStat(pid);
  return [(fields[11]! + fields[12]!) / 100, fields[12]! / 100];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Round {
  hash: number;
  /** `dd` of the same file: a durable write, and a durable write while another copy is read. */
  diskWrite: number;
  diskReadWrite: number;
  /** Node's http module receiving the file over loopback and hashing it (lib/http-hash-floor.ts), and its CPU seconds per GB. */
  httpHash: number;
  httpHashCPU: number;
  push: number;
  pull: number;
  /** CPU seconds per GB: the pushing daemon, the pulling daemon, and Corral's registry in each. */
  pushDaemonCPU: number;
  pullDaemonCPU: number;
  pushRegistryCPU: number;
  pullRegistryCPU: number;
  /** Of those, the system time (the kernel's copies, page faults and calls) of the pulling daemon and of the registry receiving. */
  pullDaemonSys: number;
  pushRegistrySys: number;
  /** The pulling daemon's peak resident memory, MB. */
  pullDaemonPeakMB: number;
  /** The pulling daemon's page faults during the pull: memory it touched for the first time (docs/architecture.md, "Data flow: a pull"). */
  pullDaemonFaults: number;
  /** Distribution only, a reference: the same file sent to a fresh Distribution in one PUT by Node's http client (putStraight). */
  straightPut?: number;
}

/** Page faults a process has taken so far that needed no disk read. */
function minorFaults(pid: number | undefined): number {
  return pid ? procStat(pid)[7]! : 0;
}

/** Peak resident memory of a process so far, MB. */
function peakMB(pid: number | undefined): number {
  if (!pid) return 0;
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

async function startTarget(target: Target): Promise<{ host: string; corral?: RegistryProcess; stop: () => Promise<void> }> {
  if (target === "distribution") {
    const d = await startDockerRegistry();
    return { host: d.host, stop: () => d.stop() };
  }
  let s3: S3Server | undefined;
  try {
    if (target === "corral-s3") s3 = await startS3("corral-bench");
    const corral = await startRegistry(s3?.env ?? {});
    return { host: corral.host, corral, stop: async () => (await corral.stop(), await s3?.stop()) };
  } catch (e) {
    await s3?.stop();
    throw e;
  }
}

const dir = await mkdtemp(join(tmpdir(), "corral-bench-transfer-"));
const a = await startDaemon();
const rounds: Record<string, Round[]> = {};
let size = 0;
try {
  const blob = join(dir, "blob.bin");
  await writeRandom(blob, MB * 1024 * 1024);
  // Hashed once: every round seeds the same file, and the HTTP floor checks against the same digest.
  const { digest: blobDigest, size: blobSize } = await sha256File(blob);
  size = blobSize;
  const gb = size / 1e9;
  const warmBlob = join(dir, "warm.bin");
  if (!COLD) await writeRandom(warmBlob, WARM_MB * 1024 * 1024);
  const warm = COLD ? undefined : { path: warmBlob, ...(await sha256File(warmBlob)) };
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of TARGETS) {
      const t = await startTarget(target);
      const b = await startDaemon();
      try {
        const { host, corral } = t;
        if (corral) {
          const key = (await readFile(join(a.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
          const added = await registryCLI(corral, ["user", "add", "bench", "--key", key]);
          if (added.code !== 0) throw new Error(added.stderr);
        }
        if (warm) {
          await seedModel(a, warm, [host, "bench", "warm", "latest"]);
          const warmName = `${host}/bench/warm:latest`;
          await api(a, "/api/push", { model: warmName, insecure: true });
          if (corral) await registryCLI(corral, ["visibility", "bench/warm", "public"]);
          await api(b, "/api/pull", { model: warmName, insecure: true });
        }
        await seedModel(a, { path: blob, digest: blobDigest, size }, [host, "bench", "big", "latest"]);
        const name = `${host}/bench/big:latest`;
        const cpu0 = [cpuSeconds(a.process.pid), cpuSeconds(corral?.process.pid)];
        const push = await timed(blob, () => api(a, "/api/push", { model: name, insecure: true }));
        const cpu1 = [cpuSeconds(a.process.pid), cpuSeconds(corral?.process.pid)];
        // The second daemon has no account: the model is made public for it.
        if (corral) await registryCLI(corral, ["visibility", "bench/big", "public"]);
        const cpu2 = [cpuSeconds(b.process.pid), cpuSeconds(corral?.process.pid)];
        const faults0 = minorFaults(b.process.pid);
        const pull = await timed(blob, () => api(b, "/api/pull", { model: name, insecure: true }));
        const cpu3 = [cpuSeconds(b.process.pid), cpuSeconds(corral?.process.pid)];
        const pullDaemonFaults = minorFaults(b.process.pid) - faults0;
        const pullDaemonPeakMB = peakMB(b.process.pid);
        (rounds[target] ??= []).push({
          // The references, filled in below.
          hash: NaN,
          diskWrite: NaN,
          diskReadWrite: NaN,
          httpHash: NaN,
          httpHashCPU: NaN,
          push,
          pull,
          pushDaemonCPU: (cpu1[0]![0] - cpu0[0]![0]) / gb,
          pushRegistryCPU: (cpu1[1]![0] - cpu0[1]![0]) / gb,
          pullDaemonCPU: (cpu3[0]![0] - cpu2[0]![0]) / gb,
          pullRegistryCPU: (cpu3[1]![0] - cpu2[1]![0]) / gb,
          pullDaemonSys: (cpu3[0]![1] - cpu2[0]![1]) / gb,
          pushRegistrySys: (cpu1[1]![1] - cpu0[1]![1]) / gb,
          pullDaemonPeakMB,
          pullDaemonFaults,
        });
        console.error(`round ${round + 1}, ${target}: push ${push.toFixed(2)} s, pull ${pull.toFixed(2)} s`);
      } finally {
        await b.stop();
        await t.stop();
        await rm(join(a.modelsDir, "manifests"), { recursive: true, force: true });
        await rm(join(a.modelsDir, "blobs"), { recursive: true, force: true });
      }
    }
  }
  // The references, as many rounds of them, once every transfer is done: their 2 GB of durable
  // writes slowed the transfers that followed them (a push 2.06-2.15 s just after them against
  // 1.77-1.95 without, three alternating pairs; the pull of a round after them 2.16-2.40 s against
  // 2.03 in the round before any), the virtual disk still busy with them, which no user's push or
  // pull meets. Each target's round n is put beside the references' round n.
  for (let round = 0; round < ROUNDS; round++) {
    const hash = await timed(blob, async () => void execFileSync("openssl", ["dgst", "-sha256", blob]));
    const [copyA, copyB] = [join(dir, "disk-a.bin"), join(dir, "disk-b.bin")];
    const diskWrite = await timed(blob, () => durableWrite(blob, copyA));
    const diskReadWrite = await timed(blob, () => durableWriteWhileReading(blob, copyB, copyA));
    await Promise.all([rm(copyA), rm(copyB)]);
    settle(blob);
    const floor = await httpHashFloor(blob, blobDigest);
    for (const target of TARGETS) Object.assign(rounds[target]![round]!, { hash, diskWrite, diskReadWrite, httpHash: floor.seconds, httpHashCPU: floor.receiverCPU / gb });
    let straight = "";
    if (TARGETS.includes("distribution")) {
      const d = await startDockerRegistry();
      try {
        const straightPut = await timed(blob, () => putStraight(d.host, blob, blobDigest));
        rounds.distribution![round]!.straightPut = straightPut;
        straight = `, one PUT to Distribution ${straightPut.toFixed(2)} s`;
      } finally {
        await d.stop();
      }
    }
    console.error(`references ${round + 1}: openssl dgst ${hash.toFixed(2)} s, disk ${diskWrite.toFixed(2)} / ${diskReadWrite.toFixed(2)} s, node http + hash ${floor.seconds.toFixed(2)} s${straight}`);
  }
  const mbps = (s: number): number => Math.round(size / 1e6 / s);
  const ratio = (base: number, s: number): number => Number((base / s).toFixed(2));
  const cpu = (x: number): number => Number(x.toFixed(2));
  const summary = (target: Target, runs: Round[]): object => {
    const m = Object.fromEntries(Object.keys(runs[0]!).map((k) => [k, median(runs.map((r) => r[k as keyof Round] ?? NaN))])) as unknown as Round;
    const corral = target !== "distribution";
    return {
      opensslDgstMBps: mbps(m.hash),
      diskMBps: { durableWrite: mbps(m.diskWrite), durableWriteWhileReading: mbps(m.diskReadWrite) },
      nodeHttpHash: { MBps: mbps(m.httpHash), ratio: ratio(m.hash, m.httpHash), receiverCPUSecondsPerGB: cpu(m.httpHashCPU) },
      pushMBps: mbps(m.push),
      ...(m.straightPut === undefined ? {} : { straightPutMBps: mbps(m.straightPut) }),
      pullMBps: mbps(m.pull),
      pushRatio: ratio(m.hash, m.push),
      pullRatio: ratio(m.hash, m.pull),
      cpuSecondsPerGB: {
        pushDaemon: cpu(m.pushDaemonCPU),
        pullDaemon: cpu(m.pullDaemonCPU),
        ...(corral ? { pushRegistry: cpu(m.pushRegistryCPU), pullRegistry: cpu(m.pullRegistryCPU) } : {}),
      },
      systemSecondsPerGB: { pullDaemon: cpu(m.pullDaemonSys), ...(corral ? { pushRegistry: cpu(m.pushRegistrySys) } : {}) },
      pullDaemonPeakMB: Math.round(m.pullDaemonPeakMB),
      pullDaemonFaults: m.pullDaemonFaults,
      seconds: runs.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v.toFixed(2))]))),
    };
  };
  const names: Record<Target, string> = {
    corral: "Corral registry (PGlite, filesystem blobs)",
    "corral-s3": "Corral registry (PGlite, S3 blobs in s3rver)",
    distribution: "Debian docker-registry 2.8 (filesystem)",
  };
  const result = {
    blobMB: Number((size / 1e6).toFixed(1)),
    rounds: ROUNDS,
    warmedUpWithMB: COLD ? 0 : WARM_MB,
    registries: Object.fromEntries(TARGETS.map((t) => [t, { registry: names[t], ...summary(t, rounds[t]!) }])),
  };
  console.log(JSON.stringify(result, null, 2));
  // Another size goes to a file of its own, so that the 1 GB figures the README's table gives stay.
  const out = `transfer${MB === 1024 ? "" : `-${MB}mb`}${COLD ? "-cold" : ""}.json`;
  await writeFile(new URL(`./results/${out}`, import.meta.url), JSON.stringify(result, null, 2) + "\n");
} finally {
  await a.stop();
  await rm(dir, { recursive: true, force: true });
}
