// Option precedence (§7.16): defaults, then the model's PARAMETERs, then the request's options.
import { DEFAULT_OPTIONS, optionsFromMap, OptionError, type ModelOptions } from "@corral/shared/modelfile/params";
import { StatusError } from "../errors.ts";

/** The default context window: CORRAL_CONTEXT_LENGTH, else 4096 (Ollama's tier for small machines). */
export function defaultNumCtx(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env["CORRAL_CONTEXT_LENGTH"] ?? env["OLLAMA_CONTEXT_LENGTH"]);
  return Number.isInteger(v) && v > 0 ? v : 4096;
}

export function effectiveOptions(modelParams: Record<string, unknown>, requestOptions: unknown): ModelOptions {
  if (requestOptions !== undefined && requestOptions !== null && (typeof requestOptions !== "object" || Array.isArray(requestOptions))) {
    throw new StatusError(400, "options must be an object");
  }
  try {
    const base: ModelOptions = { ...DEFAULT_OPTIONS, stop: [], num_ctx: defaultNumCtx() };
    const fromModel = optionsFromMap(modelParams, base).options;
    const merged = optionsFromMap((requestOptions ?? {}) as Record<string, unknown>, fromModel).options;
    merged.num_ctx = Math.max(4, merged.num_ctx);
    return merged;
  } catch (e) {
    if (e instanceof OptionError) throw new StatusError(500, e.message);
    throw e;
  }
}
