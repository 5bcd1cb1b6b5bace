// Quantizes one GGUF with llama.cpp's own llama_model_quantize, called through koffi from the
// libllama that @node-llama-cpp/linux-x64 ships. Run as a child process by quantize.ts: a
// GGML_ASSERT inside llama.cpp aborts only this process, and cancelling is a kill.
//
//   node worker.mjs INPUT OUTPUT FTYPE NTHREAD
//   node worker.mjs --wait        (loads the library first, then reads one job as a JSON line
//                                  {"input","output","ftype","nthread"} from stdin; a warm spare)
//
// Writes JSON lines to stdout: {"tensor":i,"of":n,"name":…} as llama.cpp starts each tensor, then
// {"done":true}; or {"error":…} and exit code 1 (2 when the library is not the one coded against).
import { writeSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { defaultsProblem, versionProblem } from "./layout.mjs";

const GGML_LOG_LEVEL_ERROR = 4;
const GGML_LOG_LEVEL_CONT = 5;

const emit = (obj) => {
  try {
    writeSync(1, JSON.stringify(obj) + "\n");
  } catch {
    // The parent is gone (its end of the pipe closed): nobody wants the result any more.
    process.exit(1);
  }
};
const fail = (message, code = 1) => {
  emit({ error: message });
  process.exit(code);
};

const waiting = process.argv[2] === "--wait";
let [input, output, ftypeArg, nthreadArg] = process.argv.slice(2);
const checkJob = () => {
  if (!input || !output || !Number.isInteger(Number(ftypeArg)) || !Number.isInteger(Number(nthreadArg))) {
    fail("usage: worker.mjs INPUT OUTPUT FTYPE NTHREAD, or --wait and a JSON job on stdin");
  }
};
if (!waiting) checkJob();

/** The job of a warm spare: the first line on stdin. */
async function readJob() {
  let text = "";
  for await (const chunk of process.stdin) {
    text += chunk;
    const nl = text.indexOf("\n");
    if (nl >= 0) {
      text = text.slice(0, nl);
      break;
    }
  }
  let job;
  try {
    job = JSON.parse(text);
  } catch {
    process.exit(0); // the daemon closed the pipe without a job: nothing to do
  }
  ({ input, output } = job);
  ftypeArg = String(job.ftype);
  nthreadArg = String(job.nthread);
  checkJob();
}

let koffi;
let binsDir;
try {
  koffi = (await import("koffi")).default;
  binsDir = (await import("@node-llama-cpp/linux-x64")).getBinsDir().binsDir;
} catch (e) {
  fail(`the llama.cpp quantizer is not available on ${process.platform}-${process.arch}: ${e instanceof Error ? e.message : String(e)}`, 2);
}
const libDir = join(binsDir, "linux-x64");
const libName = (await readdir(libDir).catch(() => [])).find((n) => /^libllama\.v[0-9.]+\.so$/.test(n));
if (!libName) fail(`no libllama.v*.so in ${libDir}`, 2);

let lib;
try {
  lib = koffi.load(join(libDir, libName));
} catch (e) {
  fail(`loading ${join(libDir, libName)}: ${e instanceof Error ? e.message : String(e)}`, 2);
}

// The version is read before anything that depends on the struct layout is called.
const version = lib.func("const char *llama_version(void)")();
const badVersion = versionProblem(version, libName);
if (badVersion) fail(badVersion, 2);

// Registered by name for the signatures below; include/llama.h of the expected version, 64 bytes.
koffi.struct("llama_model_quantize_params", {
  nthread: "int32_t",
  ftype: "int32_t",
  output_tensor_type: "int32_t",
  token_embedding_type: "int32_t",
  allow_requantize: "bool",
  quantize_output_tensor: "bool",
  only_copy: "bool",
  pure: "bool",
  keep_split: "bool",
  dry_run: "bool",
  imatrix: "void *",
  kv_overrides: "void *",
  tt_overrides: "void *",
  prune_layers: "void *",
  max_buf_size: "uint64_t",
});
const defaults = lib.func("llama_model_quantize_params llama_model_quantize_default_params(void)")();
const badDefaults = defaultsProblem(defaults, version, libName);
if (badDefaults) fail(badDefaults, 2);

// llama.cpp logs in fragments; a tensor's line starts with "[  i/  n] name". Error text is kept
// for the message when the call fails.
const LogCallback = koffi.proto("void ggml_log_callback(int level, const char *text, void *user_data)");
const errors = [];
let lastLevel = 0;
const onLog = koffi.register((level, text) => {
  const effective = level === GGML_LOG_LEVEL_CONT ? lastLevel : level;
  lastLevel = effective;
  if (typeof text !== "string") return;
  const m = /^\[\s*(\d+)\/\s*(\d+)\]\s+(\S+)/.exec(text);
  if (m) emit({ tensor: Number(m[1]), of: Number(m[2]), name: m[3] });
  else if (effective === GGML_LOG_LEVEL_ERROR) {
    const line = text.trim();
    if (line && !/^=+$/.test(line)) errors.push(line);
  }
}, koffi.pointer(LogCallback));
lib.func("void llama_log_set(ggml_log_callback *cb, void *user_data)")(onLog, null);
lib.func("void llama_backend_init(void)")();

const quantize = lib.func("uint32_t llama_model_quantize(const char *inp, const char *out, const llama_model_quantize_params *params)");
if (waiting) await readJob();
const params = { ...defaults, ftype: Number(ftypeArg), nthread: Number(nthreadArg) };
const rc = quantize(input, output, params);
if (rc !== 0) fail(errors.length > 0 ? errors.slice(-3).join("; ") : `llama_model_quantize returned ${rc}`);
emit({ done: true });
process.exit(0);
