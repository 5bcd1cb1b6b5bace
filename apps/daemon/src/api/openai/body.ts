// Reads an OpenAI request body and checks field types the way Ollama's Go decoder does, so a
// wrongly typed field gets the same 400 message (`json: cannot unmarshal string into Go struct
// field ChatCompletionRequest.max_tokens of type int`). `null` is accepted everywhere, as in Go.

import { StatusError } from "../../errors.ts";

type JSONKind = "string" | "number" | "bool" | "array" | "object";

export interface GoType {
  /** The Go type name quoted in errors, e.g. `int`, `[]openai.Message`. */
  name: string;
  /** JSON kinds this type decodes from; empty means any. */
  accepts: JSONKind[];
  int?: boolean;
  fields?: Record<string, GoType>;
  elem?: GoType;
}

const t = (name: string, ...accepts: JSONKind[]): GoType => ({ name, accepts });

export const go = {
  any: t("interface {}"),
  string: t("string", "string"),
  bool: t("bool", "bool"),
  int: { name: "int", accepts: ["number"], int: true } as GoType,
  float64: t("float64", "number"),
  float32: t("float32", "number"),
  object: (name: string, fields: Record<string, GoType> = {}): GoType => ({ name, accepts: ["object"], fields }),
  slice: (elem: GoType): GoType => ({ name: `[]${elem.name}`, accepts: ["array"], elem }),
};

function kindOf(v: unknown): JSONKind {
  if (typeof v === "string") return "string";
  if (typeof v === "number") return "number";
  if (typeof v === "boolean") return "bool";
  if (Array.isArray(v)) return "array";
  return "object";
}

function check(v: unknown, type: GoType, struct: string, field: string): void {
  if (v === null) return;
  const kind = kindOf(v);
  const where = `Go struct field ${struct}.${field} of type ${type.name}`;
  if (type.accepts.length > 0 && !type.accepts.includes(kind)) throw new StatusError(400, `json: cannot unmarshal ${kind} into ${where}`);
  if (type.int && !Number.isInteger(v)) throw new StatusError(400, `json: cannot unmarshal number ${String(v)} into ${where}`);
  if (type.elem && Array.isArray(v)) for (const e of v) check(e, type.elem, struct, field);
  if (type.fields && kind === "object") checkFields(v as Record<string, unknown>, type.fields, struct, `${field}.`);
}

function checkFields(obj: Record<string, unknown>, fields: Record<string, GoType>, struct: string, prefix: string): void {
  for (const [key, type] of Object.entries(fields)) {
    if (key in obj) check(obj[key], type, struct, prefix + key);
  }
}

/**
 * Checks `v` as Go decodes a struct on its own (not as a field of the request), as the decoders of
 * values that may take several shapes do: `null` is an empty struct, another non-object names the
 * whole `type`, and a wrongly typed field names `struct` (empty for an anonymous struct).
 */
export function decodeStruct(v: unknown, type: { name: string; struct: string }, fields: Record<string, GoType>): Record<string, unknown> {
  if (v === null || v === undefined) return {};
  const kind = kindOf(v);
  if (kind !== "object") throw new StatusError(400, `json: cannot unmarshal ${kind} into Go value of type ${type.name}`);
  checkFields(v as Record<string, unknown>, fields, type.struct, "");
  return v as Record<string, unknown>;
}

/**
 * Parses `text` as the JSON object `struct` and checks the listed fields. An empty body is `EOF`,
 * as Go's decoder reports it.
 */
export function parseBody(text: string, struct: string, fields: Record<string, GoType>): Record<string, unknown> {
  if (text.trim() === "") throw new StatusError(400, "EOF");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new StatusError(400, (e as Error).message);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new StatusError(400, `json: cannot unmarshal ${v === null ? "null" : kindOf(v)} into Go value of type openai.${struct}`);
  }
  checkFields(v as Record<string, unknown>, fields, struct, "");
  return v as Record<string, unknown>;
}

const toolCall = go.object("openai.ToolCall", {
  id: go.string,
  index: go.int,
  type: go.string,
  function: go.object(String.raw`struct { Name string "json:\"name\""; Arguments string "json:\"arguments\"" }`, {
    name: go.string,
    arguments: go.string,
  }),
});

const streamOptions = go.object("openai.StreamOptions", { include_usage: go.bool });

export const chatCompletionFields: Record<string, GoType> = {
  model: go.string,
  messages: go.slice(
    go.object("openai.Message", {
      role: go.string,
      content: go.any,
      reasoning: go.string,
      tool_calls: go.slice(toolCall),
      name: go.string,
      tool_call_id: go.string,
    }),
  ),
  stream: go.bool,
  stream_options: streamOptions,
  max_tokens: go.int,
  seed: go.int,
  stop: go.any,
  temperature: go.float64,
  frequency_penalty: go.float64,
  presence_penalty: go.float64,
  top_p: go.float64,
  response_format: go.object("openai.ResponseFormat", {
    type: go.string,
    json_schema: go.object("openai.JsonSchema"),
  }),
  tools: go.slice(go.object("api.Tool")),
  reasoning: go.object("openai.Reasoning", { effort: go.string }),
  reasoning_effort: go.string,
  logprobs: go.bool,
  top_logprobs: go.int,
  _debug_render_only: go.bool,
};

export const completionFields: Record<string, GoType> = {
  model: go.string,
  prompt: go.string,
  frequency_penalty: go.float32,
  max_tokens: go.int,
  presence_penalty: go.float32,
  seed: go.int,
  stop: go.any,
  stream: go.bool,
  stream_options: streamOptions,
  temperature: go.float32,
  top_p: go.float32,
  suffix: go.string,
  logprobs: go.int,
  _debug_render_only: go.bool,
};

export const embedFields: Record<string, GoType> = {
  input: go.any,
  model: go.string,
  dimensions: go.int,
  encoding_format: go.string,
};

/** `input` takes several shapes; responses.ts decodes it the way Ollama's own decoder does. */
export const responsesFields: Record<string, GoType> = {
  model: go.string,
  background: go.bool,
  conversation: go.any,
  include: go.slice(go.string),
  input: go.any,
  instructions: go.string,
  max_output_tokens: go.int,
  reasoning: go.object("openai.ResponsesReasoning", { effort: go.string, generate_summary: go.string, summary: go.string }),
  temperature: go.float64,
  text: go.object("openai.ResponsesText", {
    format: go.object("openai.ResponsesTextFormat", { type: go.string, name: go.string, schema: go.any, strict: go.bool }),
  }),
  top_p: go.float64,
  truncation: go.string,
  tools: go.slice(
    go.object("openai.ResponsesTool", {
      type: go.string,
      name: go.string,
      description: go.string,
      strict: go.bool,
      parameters: go.object("map[string]interface {}"),
    }),
  ),
  stream: go.bool,
};
