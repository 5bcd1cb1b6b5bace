// The llama.cpp build the quantizer's FFI layout was written against, and the checks the worker
// runs before calling into the library. llama_model_quantize_params gained fields between
// llama.cpp versions (dry_run, tt_overrides, max_buf_size), so calling another build with this
// layout could pass garbage; such a build is refused instead.

/** llama_version() of the libllama in @node-llama-cpp/linux-x64 3.22.1 (llama.cpp release v0.5.0). */
export const EXPECTED_LLAMA_VERSION = "0.5.0-dev";
export const EXPECTED_PACKAGE = "node-llama-cpp 3.22.1";

/** llama_model_quantize_default_params() of that build, read through the layout in worker.mjs. */
export const EXPECTED_DEFAULTS = Object.freeze({
  nthread: 0,
  ftype: 7,
  output_tensor_type: 43,
  token_embedding_type: 43,
  allow_requantize: false,
  quantize_output_tensor: true,
  only_copy: false,
  pure: false,
  keep_split: false,
  dry_run: false,
  imatrix: null,
  kv_overrides: null,
  tt_overrides: null,
  prune_layers: null,
  max_buf_size: 8589934592,
});

/** Undefined when `version` is the one coded against, else the message to fail with. */
export function versionProblem(version, library = "libllama") {
  if (version === EXPECTED_LLAMA_VERSION) return undefined;
  return `${library} reports llama.cpp version ${String(version)}, but the quantizer was written against llama.cpp ${EXPECTED_LLAMA_VERSION} (${EXPECTED_PACKAGE}); its llama_model_quantize_params layout may differ, so quantization is refused`;
}

/** Undefined when every default matches the fingerprint, else the message naming each difference. */
export function defaultsProblem(defaults, version, library = "libllama") {
  const same = (a, b) => (a === null || b === null ? a === b : typeof b === "boolean" ? a === b : BigInt(a) === BigInt(b));
  const diffs = [];
  for (const [key, want] of Object.entries(EXPECTED_DEFAULTS)) {
    const got = defaults?.[key];
    let ok;
    try {
      ok = got !== undefined && same(got, want);
    } catch {
      ok = false;
    }
    if (!ok) diffs.push(`${key} = ${String(got)} (expected ${String(want)})`);
  }
  if (diffs.length === 0) return undefined;
  return `${library} (llama.cpp ${String(version)}) returns default quantization parameters that differ from those of llama.cpp ${EXPECTED_LLAMA_VERSION} (${EXPECTED_PACKAGE}), which the quantizer was written against: ${diffs.join(", ")}; quantization is refused`;
}
