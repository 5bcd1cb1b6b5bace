// Push and pull throughput of a ≥1 GB model over loopback, as a ratio to a plain disk copy of the
// same blob measured in the same run.
//   npx tsx bench/transfer.ts [--mb 1024] [--rounds 3] [--registry distribution|corral] [--memory both|settled|warm]
// distribution (the default) starts Debian's docker-registry; corral starts Corral's registry
// (embedded database, filesystem blobs) and registers the pushing daemon's key.
//
// Each round starts a fresh registry and a fresh pulling daemon, and every phase (the copy, the
// push, the pull) starts after a `sync` and from the same state of memory, because on a virtual
// machine that state decides the cost of writing a gigabyte into the page cache more than anything
// the program does: memory the guest has freed is handed back to the host (free page reporting),
// and touching it again costs a fault per page on the host (here 2-3.5 s of system time per GB,
// against 0.3 s for memory freed a moment ago). Two states are measured, each for every phase:
//   settled: the phase waits until the guest has stopped handing freed memory back (the kernel's
//     page_reporting counter is still for 3 s, at most a minute; a fixed 15 s where the kernel
//     has no such counter), so its writes land in memory the host has taken back, as most writes
//     on this machine do;
//   warm: the phase follows the write and removal of a scratch file a tenth larger than the blob,
//     so its writes land in memory freed a moment ago, as on a machine whose memory is all its own.
// (Before, the copy ran just after the previous round's files were removed and wrote into warm
// memory while the push and the pull wrote into settled memory.)
// The plain disk copy is coreutils' `cp` (which copies inside the kernel, copy_file_range), the
// fastest way to copy a file here; a Node stream copy in 1 MiB pieces (the reference of earlier
// versions of this benchmark, and much slower into settled memory) is reported beside it. Each copy
// is reported twice: until it returns (the bytes are in the page cache) and until an fsync returns
// (the bytes are on the disk). A Corral pull and a push to Corral's registry end on the disk too
// (both flush a blob before they acknowledge it), so the second is the like-for-like figure;
// Distribution does not flush uploads. Medians over the rounds are reported, with every round in
// `seconds`, and the CPU time the daemons (and Corral's registry) spent per GB, which varies far
// less than wall time on a shared machine.
import { createReadStream, createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, open, rm, writeFile, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { sha256File, sha256Bytes } from "@corral/shared/digest";
import { encodeConfig, encodeManifest, MediaType } from "@corral/shared/manifest";
import { startDaemon, type Daemon } from "../test/helpers/daemon.ts";
import { startDockerRegistry } from "../test/helpers/docker-registry.ts";
import { startRegistry, registryCLI } from "../test/helpers/registry.ts";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const MB = Number(arg("mb") ?? 1024);
const ROUNDS = Number(arg("rounds") ?? 3);
type Memory = "settled" | "warm";
const memoryArg = arg("memory") ?? "both";
if (!["both", "settled", "warm"].includes(memoryArg)) throw new Error(`--memory ${memoryArg}: expected both, settled or warm`);
const MEMORY: Memory[] = memoryArg === "both" ? ["settled", "warm"] : [memoryArg as Memory];

async function writeRandom(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = 8 << 20;
  for (let done = 0; done < bytes; done += chunk) {
    if (!out.write(randomBytes(Math.min(chunk, bytes - done)))) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
}

/** Puts a model made of one big blob straight into a daemon's store. */
async function seedModel(d: Daemon, blobPath: string, name: [string, string, string, string]): Promise<number> {
  const { digest, size } = await sha256File(blobPath);
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
  return size;
}

const REPORTED = "/sys/module/page_reporting/parameters/reported_kib";
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Brings memory to the state a phase starts from (the comment at the top says why). */
async function prepare(memory: Memory): Promise<void> {
  execFileSync("sync");
  if (memory === "warm") {
    const scratch = join(dir, "scratch.bin");
    const out = await open(scratch, "w");
    const zeros = Buffer.alloc(8 << 20);
    for (let done = 0; done < MB * 1024 * 1024 * 1.1; done += zeros.length) await out.write(zeros);
    await out.close();
    await rm(scratch);
    execFileSync("sync");
    return;
  }
  if (!existsSync(REPORTED)) return sleep(15_000);
  let last = readFileSync(REPORTED, "utf8");
  for (let still = 0, waited = 0; still < 3 && waited < 60; waited++) {
    await sleep(1000);
    const now = readFileSync(REPORTED, "utf8");
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

async function timed(memory: Memory, fn: () => Promise<void>): Promise<number> {
  await prepare(memory);
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function api(d: Daemon, path: string, body: unknown): Promise<void> {
  const r = await fetch(`${d.url}${path}`, { method: "POST", body: JSON.stringify({ ...(body as object), stream: false }) });
  const j = (await r.json()) as { status?: string; error?: string };
  if (!r.ok || j.status !== "success") throw new Error(`${path}: ${j.error ?? r.status}`);
}

/** A copy (`cp`, or a Node stream copy), timed to its end and to the fsync after it. */
async function copy(memory: Memory, how: "cp" | "stream", from: string, to: string): Promise<{ cached: number; durable: number }> {
  await prepare(memory);
  const t = performance.now();
  if (how === "cp") execFileSync("cp", [from, to]);
  else await pipeline(createReadStream(from, { highWaterMark: 1 << 20 }), createWriteStream(to));
  const cached = (performance.now() - t) / 1000;
  const fh = await open(to, "r+");
  await fh.sync();
  await fh.close();
  const durable = (performance.now() - t) / 1000;
  await rm(to);
  return { cached, durable };
}

/** CPU seconds (user + system, every thread, finished ones too) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = await mkdtemp(join(tmpdir(), "corral-bench-transfer-"));
const target = arg("registry") ?? "distribution";
const a = await startDaemon();
interface Round {
  copy: number;
  durableCopy: number;
  streamCopy: number;
  durableStreamCopy: number;
  push: number;
  pull: number;
  /** CPU seconds per GB: the pushing daemon, the pulling daemon, and Corral's registry in each. */
  pushDaemonCPU: number;
  pullDaemonCPU: number;
  pushRegistryCPU: number;
  pullRegistryCPU: number;
}
const rounds: Record<Memory, Round[]> = { settled: [], warm: [] };
let size = 0;
try {
  const blob = join(dir, "blob.bin");
  await writeRandom(blob, MB * 1024 * 1024);
  for (let round = 0; round < ROUNDS; round++) {
    // The states take turns going first, so neither always follows the other.
    for (const memory of round % 2 === 0 ? MEMORY : [...MEMORY].reverse()) {
      const distribution = target === "distribution" ? await startDockerRegistry() : undefined;
      const corral = target === "corral" ? await startRegistry() : undefined;
      const host = (distribution ?? corral)!.host;
      const b = await startDaemon();
      try {
        if (corral) {
          const key = (await readFile(join(a.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
          const added = await registryCLI(corral, ["user", "add", "bench", "--key", key]);
          if (added.code !== 0) throw new Error(added.stderr);
        }
        const c = await copy(memory, "cp", blob, join(dir, "copy.bin"));
        const sc = await copy(memory, "stream", blob, join(dir, "copy.bin"));
        size = await seedModel(a, blob, [host, "bench", "big", "latest"]);
        const name = `${host}/bench/big:latest`;
        const gb = size / 1e9;
        const cpu0 = [cpuSeconds(a.process.pid), cpuSeconds(corral?.process.pid)];
        const push = await timed(memory, () => api(a, "/api/push", { model: name, insecure: true }));
        const cpu1 = [cpuSeconds(a.process.pid), cpuSeconds(corral?.process.pid)];
        // The second daemon has no account: the model is made public for it.
        if (corral) await registryCLI(corral, ["visibility", "bench/big", "public"]);
        const cpu2 = [cpuSeconds(b.process.pid), cpuSeconds(corral?.process.pid)];
        const pull = await timed(memory, () => api(b, "/api/pull", { model: name, insecure: true }));
        const cpu3 = [cpuSeconds(b.process.pid), cpuSeconds(corral?.process.pid)];
        rounds[memory].push({
          copy: c.cached,
          durableCopy: c.durable,
          streamCopy: sc.cached,
          durableStreamCopy: sc.durable,
          push,
          pull,
          pushDaemonCPU: (cpu1[0]! - cpu0[0]!) / gb,
          pushRegistryCPU: (cpu1[1]! - cpu0[1]!) / gb,
          pullDaemonCPU: (cpu3[0]! - cpu2[0]!) / gb,
          pullRegistryCPU: (cpu3[1]! - cpu2[1]!) / gb,
        });
        console.error(
          `round ${round + 1}, ${memory}: cp ${c.cached.toFixed(2)} s (on disk ${c.durable.toFixed(2)} s), stream copy ${sc.cached.toFixed(2)} s (on disk ${sc.durable.toFixed(2)} s), push ${push.toFixed(2)} s, pull ${pull.toFixed(2)} s`,
        );
      } finally {
        await b.stop();
        await distribution?.stop();
        await corral?.stop();
        await rm(join(a.modelsDir, "manifests"), { recursive: true, force: true });
        await rm(join(a.modelsDir, "blobs"), { recursive: true, force: true });
      }
    }
  }
  const mbps = (s: number): number => Number((size / 1e6 / s).toFixed(1));
  const ratio = (base: number, s: number): number => Number((base / s).toFixed(2));
  const cpu = (x: number): number => Number(x.toFixed(2));
  const summary = (runs: Round[]): object => {
    const m = Object.fromEntries(Object.keys(runs[0]!).map((k) => [k, median(runs.map((r) => r[k as keyof Round]))])) as unknown as Round;
    return {
      diskCopyMBps: mbps(m.copy),
      diskCopyToDiskMBps: mbps(m.durableCopy),
      pushMBps: mbps(m.push),
      pullMBps: mbps(m.pull),
      pushRatio: ratio(m.copy, m.push),
      pullRatio: ratio(m.copy, m.pull),
      pushRatioToDisk: ratio(m.durableCopy, m.push),
      pullRatioToDisk: ratio(m.durableCopy, m.pull),
      streamCopyMBps: mbps(m.streamCopy),
      streamCopyToDiskMBps: mbps(m.durableStreamCopy),
      pushRatioToStreamCopyOnDisk: ratio(m.durableStreamCopy, m.push),
      pullRatioToStreamCopyOnDisk: ratio(m.durableStreamCopy, m.pull),
      cpuSecondsPerGB: {
        pushDaemon: cpu(m.pushDaemonCPU),
        pullDaemon: cpu(m.pullDaemonCPU),
        ...(target === "corral" ? { pushRegistry: cpu(m.pushRegistryCPU), pullRegistry: cpu(m.pullRegistryCPU) } : {}),
      },
      seconds: runs.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v.toFixed(2))]))),
    };
  };
  const result = {
    blobMB: Number((size / 1e6).toFixed(1)),
    registry: target === "corral" ? "Corral registry (PGlite, filesystem blobs)" : "Debian docker-registry 2.8 (filesystem)",
    rounds: ROUNDS,
    memory: Object.fromEntries(MEMORY.map((memory) => [memory, summary(rounds[memory])])),
  };
  console.log(JSON.stringify(result, null, 2));
  await writeFile(new URL(`./results/transfer-${target}.json`, import.meta.url), JSON.stringify(result, null, 2) + "\n");
} finally {
  await a.stop();
  await rm(dir, { recursive: true, force: true });
}
