// Blobs in any S3-compatible bucket: blobs/sha256/<hex>, and an upload's bytes as pieces
// uploads/<uuid>/<16-digit start offset>. Pieces named by offset let a retried chunk replace what
// an interrupted one left, and let a body of unknown length be split without a database round trip.
// Commit is a server-side copy for a one-piece upload, otherwise a multipart upload streamed
// through this process; either way the blob key appears complete or not at all.

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type _Object,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { Readable, Transform } from "node:stream";
import type { S3Config } from "../config.ts";
import {
  BlobNotFoundError,
  UploadNotFoundError,
  checkDigest,
  checkUploadId,
  isUploadId,
  markBlobStoreError,
  type AppendOptions,
  type BlobStore,
  type ByteRange,
  type StoredBlob,
  type StoredUpload,
} from "./blob-store.ts";

/** Largest single PutObject/CopyObject S3 accepts. */
const MAX_SINGLE_OBJECT = 5 * 1024 ** 3;
/** Pieces of a body of unknown length are buffered up to this size each. */
const PIECE_BYTES = 64 * 1024 * 1024;
const MIN_PART_BYTES = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === "NotFound" || err.name === "NoSuchKey" || err.$metadata?.httpStatusCode === 404;
}

/** Reads a stream into buffers of exactly `size` bytes (the last may be shorter). */
async function* rechunk(source: AsyncIterable<Buffer>, size: number): AsyncIterable<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const chunk of source) {
    let buf = chunk;
    while (have + buf.length >= size) {
      const take = size - have;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      have = 0;
      buf = buf.subarray(take);
    }
    if (buf.length) {
      parts.push(buf);
      have += buf.length;
    }
  }
  if (have > 0) yield Buffer.concat(parts);
}

/** `source` with every chunk shown to `observe` on its way through (the SDK takes a stream). */
function observed(source: Readable, observe: NonNullable<AppendOptions["observe"]>): Readable {
  const through = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      let seen: Promise<void> | undefined;
      try {
        seen = observe(chunk);
      } catch (e) {
        // An error thrown here would escape the stream (the request's "data" event) and end the
        // process: it fails the chunk instead.
        return cb(e as Error);
      }
      if (seen) void seen.then(() => cb(null, chunk));
      else cb(null, chunk);
    },
  });
  source.once("error", (e) => through.destroy(e));
  return source.pipe(through);
}

export class S3BlobStore implements BlobStore {
  readonly kind = "s3";
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly presign: boolean;

  constructor(cfg: S3Config) {
    this.bucket = cfg.bucket;
    this.presign = cfg.presignedURLs ?? true;
    this.client = new S3Client({
      region: cfg.region,
      forcePathStyle: cfg.forcePathStyle,
      requestChecksumCalculation: cfg.checksums,
      responseChecksumValidation: cfg.checksums,
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      ...(cfg.accessKeyId && cfg.secretAccessKey ? { credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } } : {}),
    });
    // Every failure of a call to S3, wrapped by the SDK or not, is marked as the blob store's.
    this.client.middlewareStack.add(
      (next) => async (args) => {
        try {
          return await next(args);
        } catch (e) {
          throw markBlobStoreError(e);
        }
      },
      { step: "initialize", name: "markBlobStoreErrors" },
    );
  }

  /** Creates the bucket when it does not exist; an existing one is fine whoever reports it how. */
  async init(): Promise<this> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      try {
        await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
      } catch (e2) {
        const name = (e2 as { name?: string }).name;
        if (name !== "BucketAlreadyOwnedByYou" && name !== "BucketAlreadyExists") throw e2;
      }
    }
    return this;
  }

  private blobKey(digest: string): string {
    return `blobs/sha256/${checkDigest(digest)}`;
  }

  private uploadPrefix(id: string): string {
    return `uploads/${checkUploadId(id)}/`;
  }

  private pieceKey(id: string, offset: number): string {
    return `${this.uploadPrefix(id)}${String(offset).padStart(16, "0")}`;
  }

  async stat(digest: string): Promise<{ size: number } | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
      return { size: r.ContentLength ?? 0 };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      return r.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) throw new BlobNotFoundError(digest);
      throw e;
    }
  }

  async presignedURL(digest: string, ttlSeconds: number): Promise<string | undefined> {
    if (!this.presign) return undefined;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }), {
      expiresIn: Math.max(1, Math.min(Math.floor(ttlSeconds), 7 * 24 * 3600)),
    });
  }

  async delete(digest: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
  }

  private async *objects(prefix: string): AsyncIterable<_Object> {
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of r.Contents ?? []) yield o;
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async *list(): AsyncIterable<StoredBlob> {
    for await (const o of this.objects("blobs/sha256/")) {
      const hex = o.Key?.slice("blobs/sha256/".length) ?? "";
      if (!/^[0-9a-f]{64}$/.test(hex)) continue;
      yield { digest: `sha256:${hex}`, size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) };
    }
  }

  async createUpload(id: string): Promise<void> {
    checkUploadId(id);
  }

  async append(id: string, offset: number, source: Readable, opts: AppendOptions = {}): Promise<number> {
    const { length, observe } = opts;
    const body = observe ? observed(source, observe) : source;
    if (length !== undefined && length <= MAX_SINGLE_OBJECT) {
      if (length === 0) {
        body.resume();
        return 0;
      }
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.pieceKey(id, offset), Body: body, ContentLength: length }),
      );
      return length;
    }
    // Unknown length: S3 needs the size of every object up front, so buffer bounded pieces.
    let written = 0;
    for await (const piece of rechunk(body, PIECE_BYTES)) {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.pieceKey(id, offset + written), Body: piece, ContentLength: piece.length }),
      );
      written += piece.length;
    }
    return written;
  }

  /** The pieces that tile [0, size) in order; later pieces left by interrupted writes are ignored. */
  private async pieces(id: string, size: number): Promise<Array<{ key: string; offset: number; size: number }>> {
    const prefix = this.uploadPrefix(id);
    const byOffset = new Map<number, { key: string; size: number }>();
    for await (const o of this.objects(prefix)) {
      const off = Number(o.Key?.slice(prefix.length));
      if (o.Key && Number.isSafeInteger(off)) byOffset.set(off, { key: o.Key, size: o.Size ?? 0 });
    }
    const out: Array<{ key: string; offset: number; size: number }> = [];
    let pos = 0;
    while (pos < size) {
      const p = byOffset.get(pos);
      if (!p || p.size === 0) throw new UploadNotFoundError(id);
      const use = Math.min(p.size, size - pos);
      out.push({ key: p.key, offset: pos, size: use });
      pos += use;
    }
    return out;
  }

  private concat(pieces: Array<{ key: string; size: number }>): Readable {
    const client = this.client;
    const bucket = this.bucket;
    async function* gen(): AsyncIterable<Buffer> {
      for (const p of pieces) {
        const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: p.key, Range: `bytes=0-${p.size - 1}` }));
        for await (const chunk of r.Body as Readable) yield chunk as Buffer;
      }
    }
    return Readable.from(gen());
  }

  async readUpload(id: string, size: number): Promise<Readable> {
    return this.concat(await this.pieces(id, size));
  }

  async commit(id: string, size: number, digest: string): Promise<void> {
    const key = this.blobKey(digest);
    const pieces = await this.pieces(id, size);
    const only = pieces[0];
    if (pieces.length === 0) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: Buffer.alloc(0), ContentLength: 0 }));
    } else if (pieces.length === 1 && only && size <= MAX_SINGLE_OBJECT) {
      const src = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: only.key }));
      if ((src.ContentLength ?? 0) === size) {
        await this.client.send(
          new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: `${this.bucket}/${encodeURIComponent(only.key).replace(/%2F/g, "/")}` }),
        );
      } else {
        await this.multipart(key, this.concat(pieces), size);
      }
    } else {
      await this.multipart(key, this.concat(pieces), size);
    }
    await this.discardUpload(id);
  }

  private async multipart(key: string, body: Readable, size: number): Promise<void> {
    const partBytes = Math.max(MIN_PART_BYTES, Math.ceil(size / MAX_PARTS));
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }));
    if (!UploadId) throw new Error("S3 returned no UploadId");
    try {
      const parts: Array<{ ETag: string; PartNumber: number }> = [];
      let n = 0;
      for await (const part of rechunk(body as AsyncIterable<Buffer>, partBytes)) {
        n++;
        const r = await this.client.send(
          new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId, PartNumber: n, Body: part, ContentLength: part.length }),
        );
        parts.push({ ETag: r.ETag ?? "", PartNumber: n });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (e) {
      // Best effort: some S3-compatible servers do not implement Abort.
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId })).catch(() => {});
      throw e;
    }
  }

  async discardUpload(id: string): Promise<void> {
    const keys: string[] = [];
    for await (const o of this.objects(this.uploadPrefix(id))) if (o.Key) keys.push(o.Key);
    await Promise.all(keys.map((Key) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }))));
  }

  async *listUploads(): AsyncIterable<StoredUpload> {
    const latest = new Map<string, Date>();
    for await (const o of this.objects("uploads/")) {
      const id = o.Key?.split("/")[1] ?? "";
      if (!isUploadId(id)) continue;
      const m = o.LastModified ?? new Date(0);
      const prev = latest.get(id);
      if (!prev || prev < m) latest.set(id, m);
    }
    for (const [id, modified] of latest) yield { id, modified };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

