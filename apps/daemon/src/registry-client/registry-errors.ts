// What can go wrong talking to a registry, as the pull and push code tells the cases apart: an
// answer with an error status, no answer at all (which a later attempt may get), and a registry
// sending the daemon to another one that asks for credentials.

export class RegistryError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export class NotFoundError extends RegistryError {
  constructor() {
    super(404, "file does not exist");
  }
}

/**
 * The connection failed or closed before a complete answer: the registry may answer the next
 * attempt, so a download keeps the parts it has for the next pull to resume.
 */
export class TransportError extends RegistryError {
  constructor(message: string) {
    super(0, message);
    this.name = "TransportError";
  }
}

/**
 * A 401 from a host other than the registry the model names, or a token realm on one. The daemon
 * signs token requests only for the named registry: signing for the other host would hand a
 * hostile registry, which chose where to send the daemon, a token for the user's repositories
 * there. A 502, not a 401, so that push does not answer it with "ask an admin for access".
 */
export class ForeignCredentialsError extends RegistryError {
  constructor(message: string) {
    super(502, message);
    this.name = "ForeignCredentialsError";
  }
}

/** OpenSSL's words for bytes that are no TLS record: what an HTTP server's answer to a handshake reads as. */
const PLAIN_HTTP_ANSWER = /wrong version number|packet length too long/i;
const PLAIN_HTTP_CODES = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_PACKET_LENGTH_TOO_LONG"]);

/**
 * Whether a request failed because the server answered the TLS handshake in plain HTTP (the error
 * itself or a cause of it, as fetch wraps it): a registry without TLS reached without --insecure.
 */
export function isPlainHTTPAnswer(e: unknown): boolean {
  let cur: unknown = e;
  for (let depth = 0; depth < 4 && typeof cur === "object" && cur !== null; depth++) {
    const { code, message, cause } = cur as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === "string" && PLAIN_HTTP_CODES.has(code)) return true;
    if (code === "EPROTO" && typeof message === "string" && PLAIN_HTTP_ANSWER.test(message)) return true;
    cur = cause;
  }
  return false;
}

/** A registry that speaks plain HTTP, reached over HTTPS: what to add is the whole message. */
export class PlainHTTPRegistryError extends RegistryError {
  constructor(host: string) {
    super(502, `registry ${host} answered over plain HTTP, not HTTPS: add --insecure to use a registry without TLS`);
    this.name = "PlainHTTPRegistryError";
  }
}
