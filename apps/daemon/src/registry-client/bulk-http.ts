// The registry client's one HTTP stack: every request of a pull or a push (manifests, tokens,
// ranged downloads, upload chunks) goes over node:http(s) through here, with Node's keep-alive
// agent. Not fetch: it wraps every socket chunk in a web stream read and a promise, and for a
// multi-gigabyte blob that per-chunk cost, not the network, became the limit on loopback.

import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MAX_ERROR_BODY_BYTES, readPrefix } from "./bounded-read.ts";

export interface BulkResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

export interface BulkOptions {
  method: string;
  headers: Record<string, string>;
  /** Sent as the request body (bytes, a stream, or a function that writes and ends the request); Content-Length must be among the headers. */
  body?: Buffer | Readable | ((req: ClientRequest) => Promise<void>);
  signal?: AbortSignal;
}

/** One request; resolves when the response head arrives, the body left to the caller. */
export function bulkRequest(url: string, o: BulkOptions): Promise<BulkResponse> {
  const u = new URL(url);
  const send = u.protocol === "https:" ? httpsRequest : u.protocol === "http:" ? httpRequest : undefined;
  if (!send) return Promise.reject(new Error(`unsupported URL scheme ${u.protocol} in ${url}`));
  return new Promise((resolve, reject) => {
    const req = send(u, { method: o.method, headers: o.headers, ...(o.signal ? { signal: o.signal } : {}) }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    req.once("error", reject);
    // A failed body read (the file vanished) aborts the request with that error.
    const failed = (e: unknown): void => {
      req.destroy(e as Error);
      reject(e);
    };
    if (Buffer.isBuffer(o.body)) req.end(o.body);
    else if (typeof o.body === "function") o.body(req).catch(failed);
    else if (o.body) pipeline(o.body, req).catch(failed);
    else req.end();
  });
}

/** The first value of a response header, as fetch's Headers.get gives it. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | null {
  const v = headers[name.toLowerCase()];
  return v === undefined ? null : Array.isArray(v) ? (v[0] ?? null) : v;
}

/** Reads a (small, error) body as text: its first 64 KiB, the rest left unread. */
export function bodyText(res: IncomingMessage): Promise<string> {
  return readPrefix(res, MAX_ERROR_BODY_BYTES);
}

/**
 * Lets the socket go back to the pool without keeping a body nobody wants; a body that goes on
 * past what an empty or error answer holds closes the connection instead of being read forever.
 */
export function discard(res: IncomingMessage): void {
  let n = 0;
  res.on("data", (chunk: Buffer) => {
    n += chunk.length;
    if (n > MAX_ERROR_BODY_BYTES) res.destroy();
  });
  res.on("error", () => undefined);
  res.resume();
}
