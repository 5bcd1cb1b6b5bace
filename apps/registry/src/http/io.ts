// Request bodies and response streams. On a real socket the Node request and response are used
// directly (no web-stream copy per chunk); in-process `app.request()` calls fall back to web streams.

import { close, createReadStream } from "node:fs";
import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Context } from "hono";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { RegistryError } from "../errors.ts";
import { pumpFile, type FileSlice } from "@corral/shared/file-pump";
import { readBounded } from "@corral/shared/bounded-read";

export type { FileSlice };
import type { AppEnv } from "./env.ts";

export function requestBody(c: Context<AppEnv>): Readable {
  const incoming = c.env?.incoming;
  if (incoming && "pipe" in incoming && !incoming.readableEnded) return incoming as unknown as Readable;
  const body = c.req.raw.body;
  return body ? Readable.fromWeb(body as import("node:stream/web").ReadableStream) : Readable.from([]);
}

/** Content-Length as a number, undefined when absent; a malformed value is the client's error. */
export function contentLength(c: Context<AppEnv>): number | undefined {
  const raw = c.req.header("content-length");
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,16}$/.test(raw.trim())) throw new RegistryError("SIZE_INVALID", `invalid Content-Length ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw.trim());
}

/** Reads a small body completely, refusing more than `max` bytes without buffering them. */
export async function readLimited(c: Context<AppEnv>, max: number, what: string): Promise<Buffer> {
  const declared = contentLength(c);
  if (declared !== undefined && declared > max) {
    throw new RegistryError("SIZE_TOO_LARGE", `${what} is ${declared} bytes; the limit is ${max}`);
  }
  return readBounded(requestBody(c), max, () => new RegistryError("SIZE_TOO_LARGE", `${what} is larger than ${max} bytes`));
}

/** Drains whatever body a request carried so the connection can be reused. */
export async function discardBody(c: Context<AppEnv>): Promise<number> {
  let n = 0;
  for await (const chunk of requestBody(c)) n += (chunk as Buffer).length;
  return n;
}

/** Sends a status, headers and a stream (none for HEAD). */
export function sendStream(c: Context<AppEnv>, status: number, headers: Record<string, string>, stream: Readable | undefined): Response {
  const outgoing = c.env?.outgoing;
  if (!stream || c.req.method === "HEAD") {
    stream?.destroy();
    return new Response(null, { status, headers });
  }
  if (outgoing && "writeHead" in outgoing) {
    outgoing.writeHead(status, headers);
    pipeline(stream, outgoing as unknown as NodeJS.WritableStream).catch(() => {
      // The client went away; the stream is already destroyed.
    });
    return RESPONSE_ALREADY_SENT;
  }
  return new Response(Readable.toWeb(stream) as unknown as ReadableStream, { status, headers });
}

/** Sends a status, headers and a slice of an open file (none for HEAD), then closes the file. */
export function sendFile(c: Context<AppEnv>, status: number, headers: Record<string, string>, file: FileSlice): Response {
  const outgoing = c.env?.outgoing;
  if (c.req.method === "HEAD" || file.end < file.start) {
    close(file.fd, () => {});
    return new Response(null, { status, headers });
  }
  if (outgoing && "writeHead" in outgoing) {
    outgoing.writeHead(status, headers);
    pumpFile(file, outgoing as ServerResponse).catch(() => {
      // The client went away or the read failed; the response is already destroyed.
    });
    return RESPONSE_ALREADY_SENT;
  }
  const stream = createReadStream("", { fd: file.fd, start: file.start, end: file.end, autoClose: true, highWaterMark: 1 << 20 });
  return new Response(Readable.toWeb(stream) as unknown as ReadableStream, { status, headers });
}

export interface ParsedRange {
  start: number;
  end: number;
}

/**
 * A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range against a blob of `size` bytes. Undefined
 * means "send everything" (no header, or a form we do not serve); unsatisfiable ranges throw 416.
 */
export function parseRange(header: string | undefined, size: number): ParsedRange | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) throw rangeError(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || start >= size || end < start) throw rangeError(size);
  return { start, end };
}

function rangeError(size: number): RegistryError {
  return new RegistryError("RANGE_INVALID", `requested range is not satisfiable for ${size} bytes`).withHeaders({ "Content-Range": `bytes */${size}` });
}
