// Failures of what the registry stands on (PostgreSQL, the blob store, the disk), turned into OCI
// errors a client can act on instead of a bare 500: 503 UNAVAILABLE while the database or S3
// cannot be reached (the client may retry; the process keeps running and reconnects), 507 when
// the disk is full.

import { RegistryError } from "./errors.ts";
import { isBlobStoreError } from "./storage/blob-store.ts";

/** Node's codes for a peer that is not there or went away. */
const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOTFOUND"]);
/** PostgreSQL SQLSTATEs of classes 08 (connection exception) and 57P (operator intervention: shutdown, restart). */
const PG_UNAVAILABLE = /^(08|57P)/;
const PG_LOST = /Connection terminated|connection error|terminating connection|timeout exceeded when trying to connect|the database system is (starting up|shutting down|in recovery)|Client was closed/i;

interface ErrLike {
  code?: unknown;
  message?: unknown;
  name?: unknown;
  cause?: unknown;
  $metadata?: unknown;
  $fault?: unknown;
  severity?: unknown;
  stack?: unknown;
}

function chain(err: unknown): ErrLike[] {
  const out: ErrLike[] = [];
  let e = err as ErrLike | undefined;
  while (e && typeof e === "object" && out.length < 6 && !out.includes(e)) {
    out.push(e);
    e = e.cause as ErrLike | undefined;
  }
  return out;
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");

function reason(e: ErrLike): string {
  const code = str(e.code);
  const msg = str(e.message).split("\n")[0] ?? "";
  const http = (e.$metadata as { httpStatusCode?: unknown } | undefined)?.httpStatusCode;
  const text = code && !msg.includes(code) ? `${code}: ${msg}` : msg || code;
  return typeof http === "number" && http >= 500 ? `HTTP ${http} ${text}`.trim() : text;
}

/** A RegistryError for a backend failure, or undefined when `err` is something else. */
export function backendFailure(err: unknown, what: string): RegistryError | undefined {
  const errs = chain(err);
  const enospc = errs.find((e) => e.code === "ENOSPC");
  if (enospc) return new RegistryError("STORAGE_FULL", `no space left on device while storing ${what}: the registry's storage is full`);

  // The client hanging up mid-body surfaces through S3 and database calls too; that is not an outage.
  if (errs.some((e) => e.message === "aborted" || e.code === "ERR_STREAM_PREMATURE_CLOSE" || e.name === "AbortError")) return undefined;
  const fromS3 = errs.some((e) => isBlobStoreError(e) || e.$metadata !== undefined || e.$fault !== undefined || /@smithy|@aws-sdk/.test(str(e.stack)));
  const fromDB =
    !fromS3 &&
    errs.some((e) => /^Failed query/.test(str(e.message)) || e.severity !== undefined || /node_modules\/pg(-pool)?\//.test(str(e.stack)) || PG_LOST.test(str(e.message)));
  const status = (e: ErrLike): number => Number((e.$metadata as { httpStatusCode?: unknown } | undefined)?.httpStatusCode ?? 0);
  const lost = errs.find(
    (e) =>
      CONNECTION_CODES.has(str(e.code)) ||
      // S3 answering 5xx (a server shutting down or overloaded) is an outage too.
      (fromS3 && status(e) >= 500) ||
      (fromDB && (PG_UNAVAILABLE.test(str(e.code)) || PG_LOST.test(str(e.message)))),
  );
  if (!lost) return undefined;
  if (fromS3) return new RegistryError("UNAVAILABLE", `the registry's blob storage is unavailable (${reason(lost)}); try again later`).withHeaders({ "Retry-After": "5" });
  if (fromDB) return new RegistryError("UNAVAILABLE", `the registry's database is unavailable (${reason(lost)}); try again later`).withHeaders({ "Retry-After": "5" });
  return undefined;
}
