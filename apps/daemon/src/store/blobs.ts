// Content-addressed blobs under <models>/blobs/sha256-<hex> (Ollama's layout; docs/store-layout.md, "Blobs"). A blob only
// ever appears under its final name after its bytes were hashed and matched: it is streamed into
// a temporary file beside the blobs and renamed, so a crash leaves no half-written blob behind.

import { createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { renameDurably, writeSynced } from "@corral/shared/durable-write";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { blobFileName, HashingStream, parseDigest, sha256Bytes } from "@corral/shared/digest";

/** Prefix of in-progress writes; never a valid blob name, so readers and listings skip them. */
export const TEMP_PREFIX = ".tmp-";

export class DigestMismatchError extends Error {
  constructor(readonly expected: string, readonly actual: string) {
    super(`digest mismatch, expected "${expected}", got "${actual}"`);
    this.name = "DigestMismatchError";
  }
}

/**
 * A full disk named for what was being written: the system error says only "write". Other errors
 * pass through unchanged.
 */
export function noSpaceError(e: unknown, what: string): unknown {
  if ((e as NodeJS.ErrnoException | undefined)?.code !== "ENOSPC") return e;
  const err = new Error(`no space left on device while writing ${what}`) as NodeJS.ErrnoException;
  err.code = "ENOSPC";
  return err;
}

export class BlobStore {
  readonly dir: string;

  constructor(modelsDir: string) {
    this.dir = join(modelsDir, "blobs");
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
  }

  /** The path of a blob; the digest is validated first so it can never name another file. */
  path(digest: string): string {
    return join(this.dir, blobFileName(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      return (await stat(this.path(digest))).isFile();
    } catch {
      return false;
    }
  }

  async size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(digest))).size;
    } catch {
      return undefined;
    }
  }

  /** A fresh temporary path inside the blobs directory (same filesystem, so rename is atomic). */
  tempPath(): string {
    return join(this.dir, `${TEMP_PREFIX}${randomBytes(12).toString("hex")}`);
  }

  /**
   * Streams `source` into the store. With `expected`, a mismatch throws DigestMismatchError and
   * nothing is kept. Returns the digest, the size and whether the blob was new.
   */
  async write(source: AsyncIterable<Uint8Array> | Readable, expected?: string): Promise<{ digest: string; size: number; created: boolean }> {
    const want = expected === undefined ? undefined : parseDigest(expected);
    const tmp = this.tempPath();
    const hasher = new HashingStream();
    try {
      const readable = source instanceof Readable ? source : Readable.from(source);
      await pipeline(readable, hasher, createWriteStream(tmp, { mode: 0o644 })).catch((e: unknown) => {
        throw noSpaceError(e, `blob ${want ?? "(upload)"} to ${this.dir}`);
      });
      const digest = hasher.digest();
      if (want !== undefined && digest !== want) throw new DigestMismatchError(want, digest);
      const created = await this.commit(tmp, digest);
      return { digest, size: hasher.bytes, created };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async writeBytes(data: Uint8Array | string): Promise<{ digest: string; size: number; created: boolean }> {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const digest = sha256Bytes(bytes);
    if (await this.has(digest)) {
      await this.touch(digest);
      return { digest, size: bytes.length, created: false };
    }
    const tmp = this.tempPath();
    try {
      await writeSynced(tmp, bytes).catch((e: unknown) => {
        throw noSpaceError(e, `blob ${digest} to ${this.dir}`);
      });
      const created = await this.commit(tmp, digest);
      return { digest, size: bytes.length, created };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Moves a fully written and verified temporary file into place under its digest. If the blob
   * already exists the temporary file is dropped; either way the blob's mtime becomes now, which
   * keeps the start-up pruning from taking a blob that is about to be referenced.
   */
  async commit(tmp: string, digest: string): Promise<boolean> {
    const final = this.path(digest);
    if (await this.has(digest)) {
      await rm(tmp, { force: true });
      await this.touch(digest);
      return false;
    }
    await renameDurably(tmp, final);
    return true;
  }

  async touch(digest: string): Promise<void> {
    const now = new Date();
    await utimes(this.path(digest), now, now).catch(() => undefined);
  }

  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /** Every file in the blobs directory with its age, valid names or not (for pruning). */
  async entries(): Promise<Array<{ name: string; digest?: string; mtimeMs: number }>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: Array<{ name: string; digest?: string; mtimeMs: number }> = [];
    for (const name of names) {
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      if (!st?.isFile()) continue;
      const m = /^sha256-([0-9a-f]{64})$/.exec(name);
      out.push(m ? { name, digest: `sha256:${m[1]}`, mtimeMs: st.mtimeMs } : { name, mtimeMs: st.mtimeMs });
    }
    return out;
  }

  async removeFile(name: string): Promise<void> {
    if (name.includes("/") || name === "." || name === "..") return;
    await rm(join(this.dir, name), { force: true });
  }

  /** Renames blobs stored by very old versions as `sha256:<hex>` to the current form. */
  async migrateLegacyNames(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (/^sha256:[0-9a-fA-F]{64}$/.test(name)) {
        await rename(join(this.dir, name), join(this.dir, blobFileName(name))).catch(() => undefined);
      }
    }
  }
}
