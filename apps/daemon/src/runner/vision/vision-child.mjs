// Runs a vision model in a child process (docs/vision.md): libcorral-vision.so (llama.cpp's
// libmtmd and a small C API, built by build-mtmd.mjs) called through koffi. node-llama-cpp keeps
// its llama_context to itself and takes only tokens, so an image's embeddings cannot be fed to it:
// the whole generation of a request with images happens here, on libllama directly. An abort in
// native code ends this process only.
//
// stdin and stdout carry JSON lines. On start the worker checks the library and writes
// {"ready":true,"marker":…,"llamaVersion":…}, or {"error":…,"unavailable":true} and exits 2.
// Then, one at a time:
//   {"op":"open","model","projector","ctx","batch","threads","gpuLayers"} → {"opened":true}
//   {"op":"generate","id","prompt","images":[base64…],"maxPixels","maxTokens",
//    "temperature","topK","topP","minP","seed"}
//       → {"promptTokens":n}, then {"text":…} per decoded piece, then {"done":true,"reason","evalCount"}
// A failed step writes {"error":…,"kind":…} (kind "image", "markers", "context", "model", "eval")
// and the worker waits for the next request.
// {"op":"stop","id"} may come at any time: the generation of that id (or of a lower one) ends
// before its next token with {"done":true,"reason":"stopped",…}, or is not touched when it has
// already ended. The ids only grow, so a late stop never reaches the next request.
import { writeSync } from "node:fs";
import { createInterface } from "node:readline";
import { StringDecoder } from "node:string_decoder";
import { join } from "node:path";
import { VISION_ABI, builtVision, bundleCommit, visionSources } from "./native-library.mjs";

const emit = (obj) => {
  try {
    writeSync(1, JSON.stringify(obj) + "\n");
  } catch {
    process.exit(1); // the parent is gone
  }
};
const unavailable = (message) => {
  emit({ error: message, unavailable: true });
  process.exit(2);
};

const sources = visionSources();
if (sources instanceof Error) unavailable(sources.message);
const record = builtVision(sources);
if (!record) unavailable("libmtmd was not built on this machine (it needs git, cmake and a C++ compiler at install; then run `npm run build:vision`)");
const commit = bundleCommit(sources.bundle);
if (record.abi !== VISION_ABI || record.commit !== commit || record.llamaLib !== sources.llamaLib) {
  unavailable(`the built libmtmd is for llama.cpp ${String(record.commit).slice(0, 12)} (${record.llamaLib}), but node-llama-cpp now ships ${String(commit).slice(0, 12)} (${sources.llamaLib}); run \`npm run build:vision\` again`);
}

let koffi;
let lib;
let llama;
try {
  koffi = (await import("koffi")).default;
  llama = koffi.load(join(sources.binsDir, sources.llamaLib));
  lib = koffi.load(record.library);
} catch (e) {
  unavailable(`cannot load ${record.library}: ${e instanceof Error ? e.message : String(e)}`);
}
const abi = lib.func("int32_t corral_vision_abi(void)")();
if (abi !== VISION_ABI) unavailable(`${record.library} has interface ${abi}, but this daemon speaks ${VISION_ABI}; run \`npm run build:vision\` again`);
const llamaVersion = llama.func("const char *llama_version(void)")();

koffi.opaque("corral_vision");
const f = {
  init: lib.func("void corral_vision_init(const char *backends, int32_t debug)"),
  error: lib.func("const char *corral_vision_error(const corral_vision *s)"),
  open: lib.func("corral_vision *corral_vision_open(const char *model, const char *mmproj, int32_t n_ctx, int32_t n_batch, int32_t n_threads, int32_t n_gpu_layers)"),
  close: lib.func("void corral_vision_close(corral_vision *s)"),
  marker: lib.func("const char *corral_vision_marker(void)"),
  sampler: lib.func("void corral_vision_sampler(corral_vision *s, float temperature, int32_t top_k, float top_p, float min_p, uint32_t seed)"),
  prompt: lib.func("int32_t corral_vision_prompt(corral_vision *s, const char *text, const uint8_t **images, const size_t *sizes, int32_t n_images, int64_t max_pixels)"),
  next: lib.func("int32_t corral_vision_next(corral_vision *s, _Out_ uint8_t *piece, int32_t cap, _Out_ int32_t *len)"),
};
f.init(sources.binsDir, process.env["CORRAL_VISION_DEBUG"] ? 1 : 0);
emit({ ready: true, marker: f.marker(), llamaVersion });

const KIND = { [-1]: "image", [-2]: "markers", [-3]: "image", [-4]: "eval", [-5]: "context", [-6]: "eval" };
let session = null;

function open(req) {
  if (session) f.close(session);
  session = f.open(String(req.model), String(req.projector), req.ctx | 0 || 2048, req.batch | 0 || 512, req.threads | 0 || 1, req.gpuLayers | 0);
  if (!session) return emit({ error: f.error(null), kind: "model" });
  emit({ opened: true });
}

// The highest generation id a stop was asked for.
let stoppedThrough = 0;
// Between tokens the loop waits one turn of the event loop, so that a stop sent while the answer
// is being made is read (the native calls block the loop while they run).
const readInput = () => new Promise((resolve) => setImmediate(resolve));

async function generate(req) {
  if (!session) return emit({ error: "no model is open", kind: "model" });
  const id = Number(req.id) || 0;
  const images = (Array.isArray(req.images) ? req.images : []).map((b64) => Buffer.from(String(b64), "base64"));
  const temperature = typeof req.temperature === "number" ? req.temperature : 0;
  f.sampler(session, temperature, req.topK | 0, Number(req.topP ?? 1), Number(req.minP ?? 0), (req.seed ?? 0) >>> 0);
  const n = f.prompt(session, String(req.prompt ?? ""), images, images.map((b) => b.length), images.length, Number(req.maxPixels ?? 0));
  if (n < 0) return emit({ error: f.error(session), kind: KIND[n] ?? "eval" });
  emit({ promptTokens: n });
  const maxTokens = req.maxTokens | 0 || 128;
  const piece = Buffer.alloc(256);
  const len = [0];
  const text = new StringDecoder("utf8");
  let count = 0;
  let reason = "length";
  while (count < maxTokens) {
    await readInput();
    if (id <= stoppedThrough) {
      reason = "stopped";
      break;
    }
    const tok = f.next(session, piece, piece.length, len);
    if (tok === -1) {
      reason = "stop";
      break;
    }
    if (tok < 0) return emit({ error: f.error(session), kind: "eval" });
    count++;
    const s = text.write(piece.subarray(0, len[0]));
    if (s) emit({ text: s });
  }
  const rest = text.end();
  if (rest) emit({ text: rest });
  emit({ done: true, reason, evalCount: count });
}

// Requests run one after another in the order they came; a stop is taken as soon as it is read.
let work = Promise.resolve();
const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    emit({ error: "not a JSON line", kind: "request" });
    return;
  }
  if (req?.op === "stop") {
    stoppedThrough = Math.max(stoppedThrough, Number(req.id) || 0);
    return;
  }
  work = work.then(() => {
    if (req?.op === "open") open(req);
    else if (req?.op === "generate") return generate(req);
    else emit({ error: `unknown op ${String(req?.op)}`, kind: "request" });
  });
});
input.on("close", () => {
  void work.then(() => {
    if (session) f.close(session);
    process.exit(0);
  });
});
