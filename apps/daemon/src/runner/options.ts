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

/**
 * How many of the latest tokens the repeat penalties look at: 0 when no penalty applies, the
 * whole context window for repeat_last_n -1. Both ways of generating read it from here.
 */
export function repeatWindow(options: ModelOptions, numCtx: number): number {
  const penalize = options.repeat_penalty !== 1 || options.frequency_penalty !== 0 || options.presence_penalty !== 0;
  if (!penalize) return 0;
  return options.repeat_last_n < 0 ? numCtx : options.repeat_last_n;
}
