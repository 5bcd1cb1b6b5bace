// Blobs as files: <root>/blobs/sha256/<2 hex>/<64 hex>, uploads as <root>/uploads/<uuid>. A commit
// is a rename, so a blob is either absent or complete.

import { constants, createReadStream, open as openFd } from "node:fs";
import type { FileSlice } from "@corral/shared/file-pump";
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { BufferPool } from "@corral/shared/buffer-pool";
import { WaitingLimit } from "@corral/shared/waiting-limit";
import { openDirect, openDirectFd, toBoundary, writeSlabs, type Slab } from "@corral/shared/direct-io";
import { BackgroundFlush } from "@corral/shared/background-flush";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  BlobNotFoundError,
  UploadNotFoundError,
  checkDigest,
  checkUploadId,
  isUploadId,
  type AppendOptions,
  type BlobStore,
  type ByteRange,
  type StoredBlob,
  type StoredUpload,
} from "./blob-store.ts";

/**
 * Megabytes of uploads that may wait for the disk at once (and for the hashing thread: a buffer
 * keeps its place until it is both written and hashed), across every upload of the process. A
 * virtual disk takes no writes while it flushes (the flushes that keep a commit short, below), and
 * an upload that cannot hand its next megabyte to the disk stops reading its socket: with four
 * writes in flight per upload, a push's receiving and hashing took turns with the disk, and took
 * about the sum of the times each takes alone. A deep queue lets the bytes go on arriving and
 * being hashed while the disk flushes (2-core virtual machine, 4 GiB pushes in alternating pairs:
 * 6.5-7.2 s instead of 8.2-8.7; README, "What Node and the disk allow"). Shared, so that the memory
 * stays bounded however many uploads arrive at once; a slow client holds only the megabyte it is
 * filling.
 */
const QUEUED_WRITES = 64;
/** Exported for its tests, which watch the bound hold. */
export const diskQueue = new WaitingLimit(QUEUED_WRITES);

/**
 * Full buffers written together in one vectored write: 4 MiB in one system call and one job of the
 * thread pool instead of four, and larger requests for the disk (on a 2-core virtual machine 1 GB
 * pushes took 1.62-1.71 s against 1.86-2.07; README, "Fewer, larger writes"). The buffers stay
 * 1 MiB, so that an upload filling one slowly holds no more memory than before.
 */
const WRITE_BATCH = 4;

/**
 * Upload bytes are copied into these (see buffer-pool.ts) and written up to WRITE_BATCH at a
 * time; they start on a page so that whole ones can be written with O_DIRECT, and lie in shared memory so
 * that the upload's hash thread reads them where they are (services/upload-hash.ts). Enough are
 * kept for a full queue and the buffers being filled, so that a registry's pushes fault their
 * pages once, and those pages are mapped as soon as the first upload makes the pool (mapAhead).
 */
const chunkBuffers = new BufferPool(1 << 20, QUEUED_WRITES + 8, { pageAligned: true, shared: true, mapAhead: true });

export class FilesystemBlobStore implements BlobStore {
  readonly kind = "filesystem";
  private readonly blobsDir: string;
  private readonly uploadsDir: string;

  /**
   * Writes and background flushes that failed after their chunk was acknowledged, by upload id;
   * kept until the commit raises it or the upload is discarded (a later chunk does not make
   * earlier bytes safe).
   */
  private readonly failures = new Map<string, unknown>();

  /** The file of each upload whose chunk is arriving or whose acknowledged bytes are still being written. */
  private readonly writers = new Map<string, UploadWriter>();

  /** Set once a file here could not be opened with O_DIRECT (tmpfs, some network filesystems). */
  private directRefused = false;

  constructor(readonly root: string) {
    this.blobsDir = join(root, "blobs", "sha256");
    this.uploadsDir = join(root, "uploads");
  }

  async init(): Promise<this> {
    await mkdir(this.blobsDir, { recursive: true });
    await mkdir(this.uploadsDir, { recursive: true });
    return this;
  }

  /** Where a blob's file lives; public so that tests can damage or inspect the files. */
  blobPath(digest: string): string {
    const hex = checkDigest(digest);
    return join(this.blobsDir, hex.slice(0, 2), hex);
  }

  private uploadPath(id: string): string {
    return join(this.uploadsDir, checkUploadId(id));
  }

  async stat(digest: string): Promise<{ size: number } | undefined> {
    try {
      const s = await stat(this.blobPath(digest));
      return s.isFile() ? { size: s.size } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    const path = this.blobPath(digest);
    // Opening first turns a missing file into an error here rather than on the stream.
    const handle = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
      throw e.code === "ENOENT" ? new BlobNotFoundError(digest) : e;
    });
    return createReadStream("", {
      fd: handle,
      autoClose: true,
      // Large reads keep the per-chunk cost of the HTTP write path low.
      highWaterMark: 4 << 20,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async openRange(digest: string, range: ByteRange): Promise<FileSlice> {
    const path = this.blobPath(digest);
    // A plain descriptor rather than a FileHandle, which would close itself when collected.
    const fd = await new Promise<number>((resolve, reject) => {
      openFd(path, "r", (err, fd) => {
        if (!err) resolve(fd);
        else reject(err.code === "ENOENT" ? new BlobNotFoundError(digest) : err);
      });
    });
    // Read past the page cache too (direct-io.mjs): the upload was written that way, so a blob is
    // in the cache only once something read it through it.
    let direct: number | undefined;
    if (!this.directRefused) {
      try {
        direct = await openDirectFd(path, constants.O_RDONLY);
        if (direct === undefined) this.directRefused = true;
      } catch {
        // Any other failure: this range is read through the cache.
      }
    }
    return { fd, ...(direct === undefined ? {} : { direct }), start: range.start, end: range.end };
  }

  async presignedURL(): Promise<string | undefined> {
    return undefined;
  }

  async delete(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async *list(): AsyncIterable<StoredBlob> {
    let prefixes: string[];
    try {
      prefixes = await readdir(this.blobsDir);
    } catch {
      return;
    }
    for (const p of prefixes) {
      if (!/^[0-9a-f]{2}$/.test(p)) continue;
      for (const name of await readdir(join(this.blobsDir, p)).catch(() => [] as string[])) {
        if (!/^[0-9a-f]{64}$/.test(name) || !name.startsWith(p)) continue;
        const s = await stat(join(this.blobsDir, p, name)).catch(() => undefined);
        if (s?.isFile()) yield { digest: `sha256:${name}`, size: s.size, modified: s.mtime };
      }
    }
  }

  async createUpload(id: string): Promise<void> {
    const h = await open(this.uploadPath(id), "w");
    await h.close();
  }

  async append(id: string, offset: number, body: Readable, opts: AppendOptions = {}): Promise<number> {
    const { observe } = opts;
    const w = await this.writerFor(id, offset);
    let written = 0;
    let slab = chunkBuffers.take();
    let filled = 0;
    // A chunk that starts off a page boundary (Ollama's chunks are 100 MB) fills its first buffer
    // only up to the next one, so that the buffers after it are written at aligned offsets.
    let room = toBoundary(offset) || slab.length;
    // Positional writes queue for the disk (diskQueue, above) while the next buffer fills; the
    // thread pool runs them side by side. Full buffers go WRITE_BATCH at a time in one vectored write.
    let batch: Array<Slab & { seen: Promise<void> | undefined }> = [];
    const issue = (): void => {
      if (batch.length === 0) return;
      const slabs = batch;
      batch = [];
      const bytes = slabs.reduce((sum, s) => sum + s.n, 0);
      // Buffers of whole pages at page offsets bypass the page cache (direct-io.mjs says why; a
      // registry seldom reads a blob soon after its upload). The commit's datasync still makes
      // them durable.
      const landed = writeSlabs(w.handle, w.direct, slabs).then(
        () => w.flusher.wrote(bytes),
        (e: unknown) => {
          w.failure ??= e;
          w.failedAt = Math.min(w.failedAt, slabs[0]!.at);
        },
      );
      // Each buffer goes back to the pool once written and seen.
      for (const s of slabs) {
        const write: Promise<void> = (s.seen ? Promise.all([landed, s.seen]) : landed)
          .then(() => undefined)
          .finally(() => {
            chunkBuffers.give(s.buf);
            diskQueue.leave();
            w.writing.delete(write);
          });
        w.writing.add(write);
      }
    };
    const flush = async (): Promise<void> => {
      if (w.failure !== undefined) throw w.failure;
      if (filled === 0) return;
      await diskQueue.enter();
      if (w.failure !== undefined) {
        diskQueue.leave();
        throw w.failure;
      }
      const full = slab;
      const n = filled;
      const at = offset + written;
      slab = chunkBuffers.take();
      filled = 0;
      room = slab.length;
      written += n;
      batch.push({ buf: full, n, at, seen: observe?.(n === full.length ? full : full.subarray(0, n)) });
      if (batch.length === WRITE_BATCH || n < full.length) issue();
    };
    let ok = false;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        for (let off = 0; off < chunk.length; ) {
          const n = Math.min(chunk.length - off, room - filled);
          // fill() with a buffer of the same length is a memcpy, also into shared memory
          // (hash-window.mjs, put(), says why copy() is not).
          slab.fill(chunk.subarray(off, off + n), filled, filled + n);
          filled += n;
          off += n;
          if (filled === room) await flush();
        }
      }
      await flush();
      ok = true;
    } finally {
      issue();
      chunkBuffers.give(slab);
      w.end = offset + written;
      if (ok) w.acked = w.end;
      w.busy = false;
      // A chunk that failed settles before its error is answered, so that a retry of it finds the
      // file as the session says. One that arrived whole is answered while its last megabytes
      // still go to the disk (below, UploadWriter says why).
      if (!ok) await this.retire(id, w);
      else void this.whenLanded(id, w);
    }
    return written;
  }

  /**
   * The writer a chunk at `offset` continues: the one the previous chunk left, when it ended there
   * and nothing failed; else, once any earlier writer settled, the file opened afresh with whatever
   * is stored at or past `offset` cut off (a chunk sent again after a failure replaces it).
   */
  private async writerFor(id: string, offset: number): Promise<UploadWriter> {
    const kept = this.writers.get(id);
    if (kept && !kept.busy && !kept.retiring && kept.end === offset && kept.failure === undefined) {
      kept.busy = true;
      return kept;
    }
    // Another chunk of this session still arriving is the service's to refuse (a concurrent chunk
    // loses at its commit); this one gets a writer of its own meanwhile.
    if (kept && !kept.busy) await this.retire(id, kept);
    const failed = this.failures.get(id);
    if (failed !== undefined) throw failed;
    const handle = await open(this.uploadPath(id), "r+").catch((e: NodeJS.ErrnoException) => {
      throw e.code === "ENOENT" ? new UploadNotFoundError(id) : e;
    });
    let direct: FileHandle | undefined;
    try {
      direct = await this.openDirect(id);
      await handle.truncate(offset);
    } catch (e) {
      await direct?.close().catch(() => undefined);
      await handle.close().catch(() => undefined);
      throw e;
    }
    const w: UploadWriter = {
      handle,
      direct,
      // The bytes are pushed towards the disk as they come so that the flush before the final
      // commit finds little left to do: dirty pages, and for direct writes the disk's own cache (on
      // a virtual machine the commit's datasync after a gigabyte of direct writes took 0.45 s
      // otherwise, and it grows with the blob while the client waits for its answer).
      flusher: new BackgroundFlush(handle),
      end: offset,
      acked: offset,
      writing: new Set(),
      failure: undefined,
      failedAt: Infinity,
      busy: true,
      retiring: undefined,
    };
    if (!this.writers.has(id)) this.writers.set(id, w);
    return w;
  }

  /**
   * Closes the writer once its writes landed, unless the next chunk took it meanwhile (that
   * chunk's end comes back here): an idle session holds no descriptors.
   */
  private async whenLanded(id: string, w: UploadWriter): Promise<void> {
    while (w.writing.size > 0) await Promise.all(w.writing);
    if (!w.busy) await this.retire(id, w);
  }

  /**
   * Waits for every write of the writer and closes its files. A failure that touched bytes the
   * client was told are stored is kept for the session's next chunk and its commit (a chunk sent
   * again rewrites only what follows them). Idempotent.
   */
  private retire(id: string, w: UploadWriter): Promise<void> {
    w.retiring ??= (async () => {
      while (w.writing.size > 0) await Promise.all(w.writing);
      await w.flusher.drain().catch((e: unknown) => {
        w.failure ??= e;
        w.failedAt = 0;
      });
      if (w.failure !== undefined && w.failedAt < w.acked && !this.failures.has(id)) this.failures.set(id, w.failure);
      await w.direct?.close().catch(() => undefined);
      await w.handle.close().catch(() => undefined);
      if (this.writers.get(id) === w) this.writers.delete(id);
    })();
    return w.retiring;
  }

  /** Every byte of the upload acknowledged so far is in its file (or its failure is kept). */
  private async settle(id: string): Promise<void> {
    const w = this.writers.get(id);
    if (w) await this.retire(id, w);
  }

  /**
   * The upload's file opened for direct writes, where the buffers allow them (they start on a page).
   */
  private async openDirect(id: string): Promise<FileHandle | undefined> {
    if (this.directRefused || !chunkBuffers.aligned) return undefined;
    try {
      const direct = await openDirect(this.uploadPath(id), constants.O_WRONLY);
      if (!direct) this.directRefused = true;
      return direct;
    } catch {
      return undefined;
    }
  }

  async readUpload(id: string, size: number): Promise<Readable> {
    await this.settle(id);
    const handle = await open(this.uploadPath(id), "r").catch((e: NodeJS.ErrnoException) => {
      throw e.code === "ENOENT" ? new UploadNotFoundError(id) : e;
    });
    if (size === 0) {
      await handle.close();
      const { Readable: R } = await import("node:stream");
      return R.from([]);
    }
    return createReadStream("", { fd: handle, autoClose: true, start: 0, end: size - 1, highWaterMark: 1 << 20 });
  }

  async commit(id: string, size: number, digest: string): Promise<void> {
    const from = this.uploadPath(id);
    await this.settle(id);
    const failed = this.failures.get(id);
    if (failed !== undefined) {
      this.failures.delete(id);
      throw failed;
    }
    const handle = await open(from, "r+").catch((e: NodeJS.ErrnoException) => {
      throw e.code === "ENOENT" ? new UploadNotFoundError(id) : e;
    });
    try {
      await handle.truncate(size);
      // On the disk before it has a name: a blob the registry acknowledged survives a power cut.
      await handle.datasync();
    } finally {
      await handle.close();
    }
    const to = this.blobPath(digest);
    await mkdir(join(to, ".."), { recursive: true });
    await rename(from, to);
  }

  async discardUpload(id: string): Promise<void> {
    await this.settle(id);
    this.failures.delete(id);
    await rm(this.uploadPath(id), { force: true });
  }

  async *listUploads(): AsyncIterable<StoredUpload> {
    for (const name of await readdir(this.uploadsDir).catch(() => [] as string[])) {
      if (!isUploadId(name)) continue;
      const s = await stat(join(this.uploadsDir, name)).catch(() => undefined);
      if (s) yield { id: name, modified: s.mtime };
    }
  }

  /** Acknowledged bytes still on their way reach the file before the process lets go of it. */
  async close(): Promise<void> {
    await Promise.all([...this.writers].map(([id, w]) => this.retire(id, w)));
  }
}

/**
 * An upload's file while its chunks arrive. A chunk is answered once its bytes are queued for the
 * disk (diskQueue), not once they are written: waiting for the queue to drain left the client idle
 * at every chunk boundary, 20-50 ms of each 100 MB chunk's 125-190 ms on a 2-core virtual machine
 * (docs/architecture.md, "Data flow: a push"). The next chunk continues the same writer (its
 * descriptors and background flush), so its bytes queue behind the previous chunk's without
 * waiting, and what is acknowledged but not yet written stays within the disk queue. readUpload,
 * commit and discardUpload wait for the writes first; a write that fails after its chunk was
 * acknowledged fails the session's next chunk and its commit (the client starts the blob over).
 */
interface UploadWriter {
  handle: FileHandle;
  direct: FileHandle | undefined;
  flusher: BackgroundFlush;
  /** Where the next chunk continues: the upload's size once the writes land. */
  end: number;
  /** Bytes before this were acknowledged to the client. */
  acked: number;
  writing: Set<Promise<void>>;
  /** The first write or flush that failed, and the lowest offset a write failed at (0 for a flush). */
  failure: unknown;
  failedAt: number;
  /** A chunk is filling it. */
  busy: boolean;
  retiring: Promise<void> | undefined;
}
