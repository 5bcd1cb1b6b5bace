// Reading what a registry sends, with a limit enforced while it streams: Content-Length may be
// missing or false, and a body read whole before its size is checked lets a registry fill the
// daemon's memory. Bodies the registry-client reads go through here; blob bytes go to disk.

import { readBounded } from "@corral/shared/bounded-read";
import { RegistryError } from "./registry-errors.ts";

/** A token response: real ones are a few kilobytes of JSON. */
export const MAX_TOKEN_RESPONSE_BYTES = 1 << 20;
/** The part of an error body worth putting into a message. */
export const MAX_ERROR_BODY_BYTES = 64 << 10;

type Body = AsyncIterable<Uint8Array> | null | undefined;

/**
 * The whole body, or a RegistryError naming `what` when it runs past `limit` bytes; the rest is
 * not read (leaving the loop cancels the stream, which closes the connection).
 */
export function readAtMost(body: Body, limit: number, what: string): Promise<Buffer> {
  return readBounded(body, limit, () => new RegistryError(502, `the registry sent ${what} of more than ${limit} bytes`));
}

/** The first `limit` bytes of a body as text (an error message); the rest is not read. */
export async function readPrefix(body: Body, limit = MAX_ERROR_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  if (!body) return "";
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    n += chunk.length;
    if (n >= limit) break;
  }
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}
