// Checks the `parameters` of a create request before they are stored. Ollama stores them
// unchecked and fails only when the model runs; refusing a wrong name or type here tells the
// user at the moment they can still fix it.

import { optionsFromMap, parameterType, isDeprecatedParameter, OptionError } from "@corral/shared/modelfile/params";
import { badRequest } from "../errors.ts";

export function checkParameters(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined) continue;
    if (isDeprecatedParameter(key)) continue;
    if (parameterType(key) === undefined) throw badRequest(`unknown parameter '${key}'`);
    try {
      optionsFromMap({ [key]: value });
    } catch (e) {
      if (e instanceof OptionError) throw badRequest(`parameters: ${e.message}`);
      throw e;
    }
    out[key] = value;
  }
  return out;
}
