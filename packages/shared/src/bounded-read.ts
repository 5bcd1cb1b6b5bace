// Reading a whole body with a limit enforced while it streams: a declared length may be missing or
// false, and a body read whole before its size is checked lets the sender fill our memory. Used for
// the daemon's JSON requests, what a registry sends the daemon, and the registry's small bodies.

/**
 * The whole of `body`, or the error `tooLarge` makes once it runs past `limit` bytes; the rest is
 * not read (leaving the loop cancels a web stream and destroys a Node stream).
 */
export async function readBounded(body: AsyncIterable<Uint8Array> | null | undefined, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  if (!body) return Buffer.alloc(0);
  for await (const chunk of body) {
    n += chunk.length;
    if (n > limit) throw tooLarge();
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
  }
  return Buffer.concat(chunks, n);
}
