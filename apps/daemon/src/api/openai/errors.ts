// Errors in OpenAI's shape (docs/daemon.md, "OpenAI-compatible endpoints"): `{"error":{"message","type","param":null,"code":null}}`, with
// the type chosen by status the way OpenAI's clients expect it.

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: null; code: null };
}

export function errorType(status: number): string {
  if (status === 400) return "invalid_request_error";
  if (status === 404) return "not_found_error";
  return "api_error";
}

export function errorBody(status: number, message: string): OpenAIErrorBody {
  return { error: { message, type: errorType(status), param: null, code: null } };
}

export function errorResponse(status: number, message: string): Response {
  return Response.json(errorBody(status, message), { status });
}

/**
 * Re-states a native error response (`{"error": "…"}`, or any text such as `404 page not found`) in
 * OpenAI's shape with the same status.
 */
export async function fromNativeError(res: Response): Promise<Response> {
  return errorResponse(res.status, nativeErrorMessage(await res.text()));
}

/** The message of a native error body; text that is not `{"error": "…"}` is the message itself. */
export function nativeErrorMessage(text: string): string {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === "object" && v !== null && typeof (v as { error?: unknown }).error === "string") {
      return (v as { error: string }).error;
    }
  } catch {
    // not JSON: the text is the message
  }
  return text.trim();
}
