// Content digests (`sha256:<hex>`): validation, streaming hashing and the mapping to blob file
// names (docs/store-layout.md, "Blobs"). A digest is validated here before it ever becomes a path.

import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Transform, type TransformCallback } from "node:stream";

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
/** Ollama's path mapping also accepts '-' as separator and upper-case hex. */
const LOOSE_DIGEST_RE = /^sha256[:-][0-9a-fA-F]{64}$/;

export class InvalidDigestError extends Error {
  constructor(readonly input: string) {
    super(`invalid digest format: ${JSON.stringify(input.length > 80 ? input.slice(0, 80) + "…" : input)} (expected sha256:<64 hex digits>)`);
    this.name = "InvalidDigestError";
  }
}

/** True for a canonical digest: `sha256:` and 64 lower-case hex digits. */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/**
 * Accepts `sha256:<hex>` or `sha256-<hex>` (any hex case) and returns the canonical
 * `sha256:<lowercase hex>`; throws InvalidDigestError otherwise.
 */
export function parseDigest(s: string): string {
  if (!LOOSE_DIGEST_RE.test(s)) throw new InvalidDigestError(s);
  return `sha256:${s.slice(7).toLowerCase()}`;
}

/** The blob's file name in a model store: the digest with ':' replaced by '-'. */
export function blobFileName(digest: string): string {
  return parseDigest(digest).replace(":", "-");
}

/** The 64 hex digits without the algorithm prefix. */
export function digestHex(digest: string): string {
  return parseDigest(digest).slice(7);
}

/** The first 12 hex digits, how the CLI shows digests. */
export function shortDigest(digest: string): string {
  return digestHex(digest).slice(0, 12);
}

export function sha256Bytes(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Hashes a file by streaming it; memory use is constant whatever the file's size. */
export async function sha256File(path: string, onBytes?: (n: number) => void): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    size += buf.length;
    onBytes?.(buf.length);
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  /** Only valid once the stream has ended. */
  digest(): string {
    return `sha256:${this.hash.digest("hex")}`;
  }
}
