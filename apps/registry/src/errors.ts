// The registry's error codes (OCI distribution spec, plus Distribution's RANGE_INVALID), each with
// its HTTP status, serialised one way: {"errors":[{"code","message","detail"}]}.

interface Descriptor {
  status: number;
  message: string;
  /** The code clients see, when this entry only answers with another status than that code's. */
  sentAs?: string;
}

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
  // A body over a limit is a SIZE_INVALID that clients should not retry as it is: 413.
  SIZE_TOO_LARGE: { status: 413, message: "content too large", sentAs: "SIZE_INVALID" },
  RANGE_INVALID: { status: 416, message: "invalid content range" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 405, message: "the operation is unsupported" },
  NOT_FOUND: { status: 404, message: "not found" },
  CONFLICT: { status: 409, message: "conflict" },
  INVALID_REQUEST: { status: 400, message: "invalid request" },
  UNAVAILABLE: { status: 503, message: "service unavailable" },
  // A mirrored namespace's upstream failed and no cached copy could stand in (docs/protocol.md, "Mirrors").
  UPSTREAM_FAILED: { status: 502, message: "the upstream registry failed", sentAs: "UNAVAILABLE" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  UNKNOWN: { status: 500, message: "unknown error" },
  // The disk under the registry is full: the OCI spec has no code for it, the status says it.
  STORAGE_FULL: { status: 507, message: "insufficient storage", sentAs: "UNKNOWN" },
} as const satisfies Record<string, Descriptor>;

export type ErrorCode = keyof typeof ErrorCodes;

/** The code an error of this entry carries on the wire. */
export function wireCode(code: ErrorCode): string {
  const d: Descriptor = ErrorCodes[code];
  return d.sentAs ?? code;
}

/**
 * An error a client is answered with: its status comes from the code table, the message is the
 * table's unless given, and detail and headers are added by the builder methods:
 * `new RegistryError("BLOB_UNKNOWN", text).withDetail({ digest })`.
 */
export class RegistryError extends Error {
  readonly status: number;
  private detailValue: unknown = undefined;
  private headerValues: Record<string, string> = {};

  constructor(
    readonly code: ErrorCode,
    message?: string,
  ) {
    super(message ?? ErrorCodes[code].message);
    this.name = "RegistryError";
    this.status = ErrorCodes[code].status;
  }

  /** Structured facts for clients (`detail` in the body). */
  withDetail(detail: unknown): this {
    this.detailValue = detail;
    return this;
  }

  /** Headers the answer carries (a challenge, Retry-After, Content-Range). */
  withHeaders(headers: Record<string, string>): this {
    Object.assign(this.headerValues, headers);
    return this;
  }

  get detail(): unknown {
    return this.detailValue;
  }

  get headers(): Readonly<Record<string, string>> {
    return this.headerValues;
  }

  body(): { errors: Array<{ code: string; message: string; detail?: unknown }> } {
    const e: { code: string; message: string; detail?: unknown } = { code: wireCode(this.code), message: this.message };
    if (this.detail !== undefined) e.detail = this.detail;
    return { errors: [e] };
  }
}

export type AdminErrorCode = "INVALID_REQUEST" | "NOT_FOUND" | "CONFLICT";

/**
 * A request an administrator or an owner can correct (a bad name, a missing account, a change the
 * rules refuse). The admin API answers it like any RegistryError; the web pages show its message.
 */
export class AdminError extends RegistryError {
  declare readonly status: (typeof ErrorCodes)[AdminErrorCode]["status"];

  constructor(code: AdminErrorCode, message: string) {
    super(code, message);
    this.name = "AdminError";
  }
}

export function errorResponse(err: RegistryError, head = false): Response {
  const text = JSON.stringify(err.body());
  const headers = new Headers({ "Content-Type": "application/json; charset=utf-8", ...err.headers });
  headers.set("Content-Length", String(Buffer.byteLength(text)));
  return new Response(head ? null : text, { status: err.status, headers });
}
