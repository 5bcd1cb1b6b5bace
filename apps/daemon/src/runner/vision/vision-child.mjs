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
//   {"op":"generate","prompt","images":[base64…],"maxPixels","maxTokens",
//    "temperature","topK","topP","minP","seed"}
//       → {"promptTokens":n}, then {"text":…} per decoded piece, then {"done":true,"reason","evalCount"}
// A failed step writes {"error":…,"kind":…} (kind "image", "markers", "context", "model", "eval")
// and the worker waits for the next request.
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

function generate(req) {
  if (!session) return emit({ error: "no model is open", kind: "model" });
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

for await (const line of createInterface({ input: process.stdin })) {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    emit({ error: "not a JSON line", kind: "request" });
    continue;
  }
  if (req.op === "open") open(req);
  else if (req.op === "generate") generate(req);
  else emit({ error: `unknown op ${String(req.op)}`, kind: "request" });
}
if (session) f.close(session);
process.exit(0);
