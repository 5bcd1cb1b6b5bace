#!/usr/bin/env node
// Builds libcorral-vision.so (docs/vision.md): llama.cpp's libmtmd from the source node-llama-cpp
// ships (node_modules/node-llama-cpp/llama/gitRelease.bundle, the release of its prebuilt
// libraries), with corral-vision.cpp, linked against those prebuilt libllama/libggml. Run by
// `npm run build` and on its own as `node build-mtmd.mjs`. The result is kept under
// node_modules/.corral-vision, keyed by everything it is built from, so a second run is instant.
//
// It fails soft: without git, cmake or a C++ compiler it prints one line saying so and exits 0;
// the daemon then runs text models as before and refuses images naming the reason.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BUILD_RECORD, VISION_ABI, bundleCommit, visionSources } from "./native-library.mjs";

// The C API's sources: apps/daemon/native/mtmd beside the sources in a checkout, or beside dist/
// in the installed package, which runs this file from there at postinstall.
// Where neither has them, the checkout's place, so that the error names where they belong.
const NATIVE_PLACES = ["../../../native/mtmd/", "../native/mtmd/"].map((p) => fileURLToPath(new URL(p, import.meta.url)));
const NATIVE = NATIVE_PLACES.find((d) => existsSync(join(d, "CMakeLists.txt"))) ?? NATIVE_PLACES[0];
const LIBRARY = "libcorral-vision.so";
// What libmtmd and the vendored headers need of the llama.cpp tree; the rest is never unpacked.
const PATHS = ["tools/mtmd", "include", "ggml/include", "vendor", "src/llama-ext.h"];

/** The one line to print about a build's result, or undefined when there is nothing new to say. */
export function describeVisionBuild(r) {
  if (r.ok) return r.cached ? undefined : `corral: libmtmd built for image input in ${r.seconds.toFixed(1)} s`;
  return `corral: image input is off: ${r.reason}; text models work as before; to enable images install git, cmake and a C++ compiler (g++ or clang++), then run \`npm run build:vision\``;
}

/**
 * Builds the library unless an identical build is there. Resolves to { ok: true, library,
 * seconds, cached } or { ok: false, reason } (never rejects).
 */
export async function buildVision({ jobs = availableParallelism(), log = () => undefined } = {}) {
  const sources = visionSources();
  if (sources instanceof Error) return { ok: false, reason: sources.message };
  const commit = bundleCommit(sources.bundle);
  if (!commit) return { ok: false, reason: `${sources.bundle} is not a git bundle` };

  const hash = createHash("sha256");
  for (const part of [commit, sources.llamaLib, sources.ggmlLib, String(VISION_ABI)]) hash.update(part + "\n");
  for (const file of readdirSync(NATIVE).sort()) hash.update(file + "\n").update(readFileSync(join(NATIVE, file)));
  const key = hash.digest("hex").slice(0, 16);
  const outDir = join(sources.cacheRoot, key);
  const library = join(outDir, LIBRARY);
  const recordPath = join(sources.cacheRoot, BUILD_RECORD);
  try {
    const rec = JSON.parse(readFileSync(recordPath, "utf8"));
    if (rec.key === key && existsSync(rec.library)) return { ok: true, library: rec.library, seconds: 0, cached: true };
  } catch {
    // no build yet
  }

  for (const [tool, why] of [
    ["git", "git (to unpack node-llama-cpp's llama.cpp source)"],
    ["cmake", "cmake"],
  ]) {
    const r = spawnSync(tool, ["--version"], { stdio: "ignore" });
    if (r.error || r.status !== 0) return { ok: false, reason: `${why} is not installed` };
  }

  const started = process.hrtime.bigint();
  mkdirSync(sources.cacheRoot, { recursive: true });
  const work = join(sources.cacheRoot, `work-${process.pid}-${Date.now()}`);
  const src = join(work, "src");
  const build = join(work, "build");
  const logPath = join(sources.cacheRoot, "build.log");
  let transcript = "";
  let lastStep = "";
  const run = (step, cmd, args, cwd) => {
    if (step !== lastStep) log(`${step}…`);
    lastStep = step;
    const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    transcript += `$ ${cmd} ${args.join(" ")}\n${r.stdout ?? ""}${r.stderr ?? ""}\n`;
    if (r.error || r.status !== 0) {
      const lines = `${r.stderr ?? ""}${r.stdout ?? ""}`.split("\n").filter((l) => /error|not found|No CMAKE_CXX_COMPILER|could not/i.test(l));
      throw new Error(`${step} failed${lines.length ? `: ${lines[0].trim()}` : ""} (full log in ${logPath})`);
    }
  };
  try {
    mkdirSync(src, { recursive: true });
    run("unpacking llama.cpp", "git", ["init", "-q", "."], src);
    run("unpacking llama.cpp", "git", ["fetch", "-q", sources.bundle, commit], src);
    run("unpacking llama.cpp", "git", ["checkout", "-q", "FETCH_HEAD", "--", ...PATHS], src);
    run("configuring libmtmd", "cmake", [
      "-S", NATIVE, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
      `-DLLAMA_SRC=${src}`, `-DLLAMA_BINS=${sources.binsDir}`, `-DLLAMA_LIB=${sources.llamaLib}`, `-DGGML_LIB=${sources.ggmlLib}`,
    ], work);
    run("compiling libmtmd", "cmake", ["--build", build, "--target", "corral-vision", "-j", String(Math.max(1, jobs))], work);
    const staged = join(work, "out");
    mkdirSync(staged);
    copyFileSync(join(build, LIBRARY), join(staged, LIBRARY));
    rmSync(outDir, { recursive: true, force: true });
    renameSync(staged, outDir);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const record = { key, library, commit, llamaLib: sources.llamaLib, abi: VISION_ABI, seconds: Math.round(seconds * 10) / 10 };
    const tmpRecord = `${recordPath}.${process.pid}`;
    writeFileSync(tmpRecord, JSON.stringify(record, null, 2) + "\n");
    renameSync(tmpRecord, recordPath);
    // Older builds are no longer named by the record.
    for (const d of readdirSync(sources.cacheRoot)) {
      if (/^[0-9a-f]{16}$/.test(d) && d !== key) rmSync(join(sources.cacheRoot, d), { recursive: true, force: true });
    }
    return { ok: true, library, seconds, cached: false };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  } finally {
    try {
      writeFileSync(logPath, transcript);
    } catch {
      // the log is a convenience
    }
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const quiet = process.argv.includes("--quiet");
  const r = await buildVision({ log: quiet ? undefined : (s) => process.stderr.write(`corral: ${s}\n`) });
  const line = describeVisionBuild(r) ?? (quiet ? undefined : "corral: image input ready (libmtmd already built)");
  if (line) process.stderr.write(line + "\n");
  // Never fails the install or the build: text models do not need this library.
  process.exit(0);
}
