// The one storage interface every blob driver implements (filesystem, S3), in the spirit of
// Distribution's storage driver: a few primitives, content addressed by digest, plus an upload area
// where a session's bytes accumulate before they are verified and committed. Digests and upload
// ids are validated by callers and again by the drivers before they become paths or keys.

import type { Readable } from "node:stream";
import { isDigest } from "@corral/shared/digest";
import type { FileSlice } from "@corral/shared/file-pump";

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface StoredBlob {
  digest: string;
  size: number;
  modified: Date;
}

export interface StoredUpload {
  id: string;
  modified: Date;
}

export interface AppendOptions {
  /** The body's length, when known: it lets drivers avoid buffering. */
  length?: number | undefined;
  /**
   * Sees every byte, in order, before it is written (the upload's running digest). When it returns
   * a promise (it never rejects), the driver leaves those bytes unchanged until it settles, and
   * what it lets wait on such promises is bounded (services/upload-hash.ts).
   */
  observe?: ((bytes: Buffer) => Promise<void> | undefined) | undefined;
}

export interface BlobStore {
  readonly kind: "filesystem" | "s3";
  /** Size of a committed blob, or undefined when the store does not have it. */
  stat(digest: string): Promise<{ size: number } | undefined>;
  /** The blob's bytes, or the inclusive range of them; throws BlobNotFoundError when absent. */
  read(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * Optional, for drivers whose blobs are local files: an open descriptor over the inclusive range
   * of the blob. The HTTP layer then copies it to the socket through pooled buffers (file-pump.ts)
   * instead of a stream that allocates per chunk; the caller owns the descriptor. Throws
   * BlobNotFoundError when absent. Callers use `read` when a driver lacks it.
   */
  openRange?(digest: string, range: ByteRange): Promise<FileSlice>;
  /**
   * A URL that serves the blob, honouring Range, without the registry's token; undefined when the
   * store cannot sign URLs itself (the registry then hands out its own signed URL).
   */
  presignedURL(digest: string, ttlSeconds: number): Promise<string | undefined>;
  delete(digest: string): Promise<void>;
  list(): AsyncIterable<StoredBlob>;

  /** Prepares an empty upload area for a new session. */
  createUpload(id: string): Promise<void>;
  /**
   * Writes `body` at `offset` of the upload (anything stored at or past `offset` is replaced) and
   * returns the number of bytes taken. A driver may still be writing the last of them when it
   * returns (the filesystem's does, within its disk queue): readUpload, commit and discardUpload
   * wait for those writes, and one that fails fails the next append and the commit.
   */
  append(id: string, offset: number, body: Readable, opts?: AppendOptions): Promise<number>;
  /** The first `size` bytes of an upload, in order. */
  readUpload(id: string, size: number): Promise<Readable>;
  /** Makes the first `size` bytes of the upload the blob `digest`, atomically, then drops the upload area. */
  commit(id: string, size: number, digest: string): Promise<void>;
  discardUpload(id: string): Promise<void>;
  listUploads(): AsyncIterable<StoredUpload>;
  close(): Promise<void>;
}

const FROM_BLOB_STORE = Symbol("from the blob store");

/**
 * Marks an error as raised by a blob store driver's backend (S3's SDK, its sockets), so that the
 * application can tell an outage of the blob store from its own failures, whatever shape the error
 * arrives in (the SDK sometimes rethrows a bare socket error).
 */
export function markBlobStoreError(e: unknown): unknown {
  if (e && typeof e === "object" && !(FROM_BLOB_STORE in e)) Object.defineProperty(e, FROM_BLOB_STORE, { value: true });
  return e;
}

export function isBlobStoreError(e: unknown): boolean {
  return Boolean(e && typeof e === "object" && FROM_BLOB_STORE in e);
}

export class BlobNotFoundError extends Error {
  constructor(readonly digest: string) {
    super(`blob ${digest} is not in the store`);
    this.name = "BlobNotFoundError";
  }
}

export class UploadNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`upload ${id} has no data in the store`);
    this.name = "UploadNotFoundError";
  }
}

const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Last line of defence before a digest becomes a path or key. */
export function checkDigest(digest: string): string {
  if (!isDigest(digest)) throw new Error(`refusing to use ${JSON.stringify(digest.slice(0, 80))} as a blob key`);
  return digest.slice("sha256:".length);
}

export function checkUploadId(id: string): string {
  if (!UPLOAD_ID_RE.test(id)) throw new Error(`refusing to use ${JSON.stringify(id.slice(0, 80))} as an upload key`);
  return id;
}

export function isUploadId(id: string): boolean {
  return UPLOAD_ID_RE.test(id);
}
