// Where the vision library and what it is built from live (docs/vision.md): the llama.cpp source
// node-llama-cpp ships as a git bundle, the prebuilt libllama/libggml of @node-llama-cpp/linux-x64
// (the same release), and the built libcorral-vision.so, kept in node_modules/.corral-vision so
// that it goes away with the packages it was linked against. Shared by build-mtmd.mjs and the
// worker, in plain JavaScript because both run without TypeScript.
import { createRequire } from "node:module";
import { existsSync, openSync, readSync, closeSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";

/** corral_vision_abi() of the corral-vision.cpp this code calls; the worker refuses another. */
export const VISION_ABI = 1;

/** The file a successful build writes beside the library, and what the worker reads. */
export const BUILD_RECORD = "current.json";

const require = createRequire(import.meta.url);

/** The folder of an installed package, found from its main entry (its exports hide package.json). */
function packageDir(name) {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, "utf8")).name === name) return dir;
      } catch {
        // not a package.json we can read: keep climbing
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of ${name}`);
    dir = up;
  }
}

/**
 * The inputs of the build, or an Error saying which is missing. Only linux-x64 has prebuilt
 * libraries here; other platforms get text-only operation.
 */
export function visionSources() {
  if (process.platform !== "linux" || process.arch !== "x64") {
    return new Error(`image input is built only on linux-x64, not ${process.platform}-${process.arch}`);
  }
  let nodeLlamaCpp;
  let prebuilt;
  try {
    nodeLlamaCpp = packageDir("node-llama-cpp");
    prebuilt = packageDir("@node-llama-cpp/linux-x64");
  } catch (e) {
    return new Error(`node-llama-cpp is not installed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const bundle = join(nodeLlamaCpp, "llama", "gitRelease.bundle");
  const binsDir = join(prebuilt, "bins", "linux-x64");
  const names = existsSync(binsDir) ? readdirSync(binsDir) : [];
  const llamaLib = names.find((n) => /^libllama\.v[0-9.]+\.so$/.test(n));
  const ggmlLib = names.find((n) => /^libggml\.v[0-9.]+\.so$/.test(n));
  if (!existsSync(bundle)) return new Error(`node-llama-cpp has no llama.cpp source bundle at ${bundle}`);
  if (!llamaLib || !ggmlLib || !names.includes("libggml-base.so")) return new Error(`no prebuilt libllama/libggml in ${binsDir}`);
  // CORRAL_VISION_DIR moves the built library where node_modules is read-only; the daemon must be
  // started with the same value.
  const cacheRoot = process.env["CORRAL_VISION_DIR"] || join(dirname(nodeLlamaCpp), ".corral-vision");
  return { bundle, binsDir, llamaLib, ggmlLib, cacheRoot };
}

/** The commit a git bundle holds, from its text header (no git needed). */
export function bundleCommit(bundle) {
  const fd = openSync(bundle, "r");
  try {
    const buf = Buffer.alloc(512);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const m = /^# v[23] git bundle\n(?:@[^\n]*\n)*([0-9a-f]{40}) /.exec(buf.subarray(0, n).toString("latin1"));
    return m ? m[1] : undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * What the last successful build left: { library, commit, llamaLib, abi, seconds }, or undefined
 * when there is none (no compiler at install, or the build was never run).
 */
export function builtVision(sources = visionSources()) {
  if (sources instanceof Error) return undefined;
  try {
    const rec = JSON.parse(readFileSync(join(sources.cacheRoot, BUILD_RECORD), "utf8"));
    if (typeof rec.library !== "string" || !existsSync(rec.library)) return undefined;
    return rec;
  } catch {
    return undefined;
  }
}
