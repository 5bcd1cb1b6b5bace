// Option precedence (docs/daemon.md, "Option precedence"): defaults, then the model's PARAMETERs, then the request's options.
import { DEFAULT_OPTIONS, optionsFromMap, OptionError, type ModelOptions } from "@corral/shared/modelfile/params";
import { daemonConfig } from "../config.ts";
import { StatusError } from "../errors.ts";

export function effectiveOptions(modelParams: Record<string, unknown>, requestOptions: unknown): ModelOptions {
  if (requestOptions !== undefined && requestOptions !== null && (typeof requestOptions !== "object" || Array.isArray(requestOptions))) {
    throw new StatusError(400, "options must be an object");
  }
  try {
    const base: ModelOptions = { ...DEFAULT_OPTIONS, stop: [], num_ctx: daemonConfig().contextLength };
    const fromModel = optionsFromMap(modelParams, base).options;
    const merged = optionsFromMap((requestOptions ?? {}) as Record<string, unknown>, fromModel).options;
    merged.num_ctx = Math.max(4, merged.num_ctx);
    return merged;
  } catch (e) {
    if (e instanceof OptionError) throw new StatusError(500, e.message);
    throw e;
  }
}
