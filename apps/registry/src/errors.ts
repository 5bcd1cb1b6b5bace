// The registry's error codes (OCI distribution spec, plus Distribution's RANGE_INVALID), each with
// its HTTP status, serialised one way: {"errors":[{"code","message","detail"}]}.

export const ErrorCodes = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: "manifest references a manifest or blob unknown to registry" },
  MANIFEST_INVALID: { status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  TAG_INVALID: { status: 400, message: "manifest tag did not match URI" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  SIZE_INVALID: { status: 400, message: "provided length did not match content length" },
  RANGE_INVALID: { status: 416, message: "invalid content range" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 405, message: "the operation is unsupported" },
  NOT_FOUND: { status: 404, message: "not found" },
  CONFLICT: { status: 409, message: "conflict" },
  INVALID_REQUEST: { status: 400, message: "invalid request" },
  UNAVAILABLE: { status: 503, message: "service unavailable" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  UNKNOWN: { status: 500, message: "unknown error" },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class RegistryError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly detail?: unknown,
    readonly headers: Record<string, string> = {},
    status?: number,
  ) {
    super(message ?? ErrorCodes[code].message);
    this.name = "RegistryError";
    this.status = status ?? ErrorCodes[code].status;
  }

  body(): { errors: Array<{ code: string; message: string; detail?: unknown }> } {
    const e: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) e.detail = this.detail;
    return { errors: [e] };
  }
}

export function errorResponse(err: RegistryError, head = false): Response {
  const text = JSON.stringify(err.body());
  const headers = new Headers({ "Content-Type": "application/json; charset=utf-8", ...err.headers });
  headers.set("Content-Length", String(Buffer.byteLength(text)));
  return new Response(head ? null : text, { status: err.status, headers });
}
