// What the native routes answer (docs/daemon.md, "Generate, chat and embed" and "Model operations"), as far as the OpenAI layer reads it, and the
// small conversions every OpenAI answer shares.

export interface NativeToolCall {
  id?: string;
  function: { index?: number; name: string; arguments?: unknown };
}

export interface NativeMetrics {
  prompt_eval_count?: number;
  eval_count?: number;
}

export interface NativeChatResponse extends NativeMetrics {
  model?: string;
  created_at?: string;
  message?: { role?: string; content?: string; thinking?: string; tool_calls?: NativeToolCall[] };
  done?: boolean;
  done_reason?: string;
  logprobs?: unknown[];
  _debug_info?: unknown;
}

export interface NativeGenerateResponse extends NativeMetrics {
  model?: string;
  created_at?: string;
  response?: string;
  done?: boolean;
  done_reason?: string;
  logprobs?: unknown[];
}

export interface NativeEmbedResponse {
  model?: string;
  embeddings?: number[][];
  prompt_eval_count?: number;
}

export interface NativeTagsResponse {
  models?: Array<{ name?: string; model?: string; modified_at?: string }>;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(r: NativeMetrics): Usage {
  const prompt = r.prompt_eval_count ?? 0;
  const completion = r.eval_count ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/**
 * Unix seconds of an RFC 3339 time as the native routes write it (nanosecond fractions, `Z` or an
 * offset); now when it is absent or unreadable.
 */
export function unixSeconds(time: string | undefined, now: () => number = Date.now): number {
  // Date.parse is only specified for millisecond fractions, so the rest of the digits go.
  const ms = time ? Date.parse(time.replace(/(\.\d{3})\d+/, "$1")) : NaN;
  return Math.floor((Number.isNaN(ms) ? now() : ms) / 1000);
}

/** `<prefix>-<0..998>`, the ids Ollama gives completions. */
export function completionId(prefix: "chatcmpl" | "cmpl"): string {
  return `${prefix}-${Math.floor(Math.random() * 999)}`;
}
