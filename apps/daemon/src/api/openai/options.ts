// OpenAI sampling fields as native `options` (docs/daemon.md, "Modelfile"). Both completion endpoints default
// temperature and top_p to 1.0, OpenAI's defaults, rather than leaving the model's own.

import { StatusError } from "../../errors.ts";

const present = (v: unknown): boolean => v !== undefined && v !== null;

/**
 * `stop` as a string or an array of strings. With `strict`, a non-string element is an error (the
 * completions endpoint); otherwise it is skipped (chat). Other JSON types are ignored, as in Ollama.
 */
export function stopOption(stop: unknown, strict: boolean): string[] | undefined {
  if (typeof stop === "string") return [stop];
  if (!Array.isArray(stop)) return undefined;
  const out: string[] = [];
  for (const s of stop) {
    if (typeof s === "string") out.push(s);
    else if (strict) throw new StatusError(400, `invalid type for 'stop' field: ${goTypeName(s)}`);
  }
  // An empty list reaches the native route as null, which leaves the model's stop words.
  return out.length > 0 ? out : undefined;
}

/** The Go type a JSON value decodes to inside an `any`, as Ollama's messages name it. */
export function goTypeName(v: unknown): string {
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "number") return "float64";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "string";
  if (Array.isArray(v)) return "[]interface {}";
  return "map[string]interface {}";
}

export interface SamplingFields {
  stop?: unknown;
  max_tokens?: unknown;
  temperature?: unknown;
  seed?: unknown;
  frequency_penalty?: unknown;
  presence_penalty?: unknown;
  top_p?: unknown;
}

/**
 * The native options for an OpenAI request. `penaltiesAlways` and `topPZeroIsDefault` carry the
 * completions endpoint's differences: its penalties are plain numbers (sent even when 0) and a
 * top_p of 0 means "not given".
 */
export function samplingOptions(
  r: SamplingFields,
  mode: { strictStop: boolean; penaltiesAlways: boolean; topPZeroIsDefault: boolean },
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const stop = stopOption(r.stop, mode.strictStop);
  if (stop) options["stop"] = stop;
  if (present(r.max_tokens)) options["num_predict"] = r.max_tokens;
  options["temperature"] = present(r.temperature) ? r.temperature : 1.0;
  if (present(r.seed)) options["seed"] = r.seed;
  if (mode.penaltiesAlways) {
    options["frequency_penalty"] = r.frequency_penalty ?? 0;
    options["presence_penalty"] = r.presence_penalty ?? 0;
  } else {
    if (present(r.frequency_penalty)) options["frequency_penalty"] = r.frequency_penalty;
    if (present(r.presence_penalty)) options["presence_penalty"] = r.presence_penalty;
  }
  const topPGiven = present(r.top_p) && !(mode.topPZeroIsDefault && r.top_p === 0);
  options["top_p"] = topPGiven ? r.top_p : 1.0;
  return options;
}
