// Unfinished downloads (docs/store-layout.md, "Partial downloads"): the store's files for a blob
// that is still arriving. Its bytes go to blobs/sha256-<hex>-partial, pre-sized, each part at its
// own offset; each part's progress to blobs/sha256-<hex>-partial-<N> as {"N","Offset","Size",
// "Completed"}, Ollama's names and fields, so a daemon killed mid-blob resumes from them (and
// Ollama's files are understood). The blob becomes visible only through commit, after the caller
// has verified it. Every name of these files lives here: the pull, fsck and the prune ask this
// module rather than matching file names themselves.

import { open, readdir, readFile, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { digestHex } from "@corral/shared/digest";
import { writeFileDurably } from "@corral/shared/durable-write";
import { noSpaceError, type BlobStore } from "./blobs.ts";

export interface PartState {
  N: number;
  Offset: number;
  Size: number;
  Completed: number;
}

// A download's data, its part states, and a part state being replaced (written to .tmp, then
// renamed over the old one: a daemon killed between the two leaves the .tmp).
const PARTIAL_FILE_RE = /^sha256-[0-9a-f]{64}-partial(-\d+(\.tmp)?)?$/;

/** Whether a file in the blobs directory belongs to an unfinished download. */
export function isPartialDownloadFile(name: string): boolean {
  return PARTIAL_FILE_RE.test(name);
}

function base(digest: string): string {
  return `sha256-${digestHex(digest)}-partial`;
}

export class PartialDownload {
  private constructor(
    private readonly blobs: BlobStore,
    readonly digest: string,
    readonly parts: PartState[],
  ) {}

  /** The file the bytes go into; a path for the hashing thread, which opens it on its own. */
  get dataPath(): string {
    return join(this.blobs.dir, base(this.digest));
  }

  private statePath(n: number): string {
    return `${this.dataPath}-${n}`;
  }

  get total(): number {
    return this.parts.reduce((n, p) => n + p.Size, 0);
  }

  get completed(): number {
    return this.parts.reduce((n, p) => n + p.Completed, 0);
  }

  /** The end of the finished front of the data: every byte before it has arrived. */
  prefix(): number {
    let end = 0;
    for (const p of this.parts) {
      end = p.Offset + p.Completed;
      if (p.Completed < p.Size) break;
    }
    return end;
  }

  /** The download of `digest` a daemon left, when its states are whole and tile the blob. */
  static async resume(blobs: BlobStore, digest: string): Promise<PartialDownload | undefined> {
    const prefix = `${base(digest)}-`;
    let names: string[];
    try {
      names = (await readdir(blobs.dir)).filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)));
    } catch {
      return undefined;
    }
    const parts: PartState[] = [];
    for (const n of names) {
      try {
        const p = JSON.parse(await readFile(join(blobs.dir, n), "utf8")) as PartState;
        if (![p.N, p.Offset, p.Size, p.Completed].every((x) => Number.isSafeInteger(x) && x >= 0) || p.Completed > p.Size) return undefined;
        parts.push({ N: p.N, Offset: p.Offset, Size: p.Size, Completed: p.Completed });
      } catch {
        return undefined;
      }
    }
    if (parts.length === 0) return undefined;
    parts.sort((a, b) => a.N - b.N);
    // A set of parts must tile the blob exactly; anything else starts over.
    for (let i = 0, off = 0; i < parts.length; off += parts[i]!.Size, i++) if (parts[i]!.N !== i || parts[i]!.Offset !== off) return undefined;
    if (!(await stat(join(blobs.dir, base(digest))).catch(() => undefined))?.isFile()) return undefined;
    return new PartialDownload(blobs, digest, parts);
  }

  /** Starts a download afresh: the data file pre-sized, a state per part. */
  static async begin(blobs: BlobStore, digest: string, plan: Array<{ offset: number; size: number }>): Promise<PartialDownload> {
    const d = new PartialDownload(blobs, digest, plan.map((p, n) => ({ N: n, Offset: p.offset, Size: p.size, Completed: 0 })));
    try {
      await d.removeFiles();
      const fh = await open(d.dataPath, "w");
      try {
        await fh.truncate(d.total);
      } finally {
        await fh.close();
      }
      // The first states only say "nothing yet": they are written side by side and not each
      // flushed (64 of them one after another, each flushed twice, held the first byte of a pull
      // back by 0.1-0.2 s). A crash that loses or truncates one makes the next pull start afresh,
      // as resume() wants every state whole; progress is saved durably (save()).
      await Promise.all(d.parts.map((p) => writeFile(d.statePath(p.N), JSON.stringify(p))));
    } catch (e) {
      // Half a plan resumes nothing.
      await d.removeFiles();
      throw noSpaceError(e, `the parts of blob ${digest} to ${blobs.dir}`);
    }
    return d;
  }

  /** The data file, for positional writes of the parts. */
  openData(): Promise<FileHandle> {
    return open(this.dataPath, "r+");
  }

  /** Records a part's progress; replaced durably, so a crash never leaves half a state. */
  save(p: PartState): Promise<void> {
    const path = this.statePath(p.N);
    return writeFileDurably(path, JSON.stringify(p), { tmp: `${path}.tmp` });
  }

  /** Makes the verified bytes the blob and removes the download's files. */
  async commit(): Promise<void> {
    if (!(await this.blobs.commit(this.dataPath, this.digest))) await rm(this.dataPath, { force: true });
    await this.removeStates();
  }

  /** Removes the download's data and states. */
  async discard(): Promise<void> {
    await this.removeFiles();
  }

  private async removeFiles(): Promise<void> {
    await rm(this.dataPath, { force: true });
    await this.removeStates();
  }

  private async removeStates(): Promise<void> {
    // Side by side: a download has up to MAX_RANGES parts, two files each.
    await Promise.all(this.parts.flatMap((p) => [rm(this.statePath(p.N), { force: true }), rm(`${this.statePath(p.N)}.tmp`, { force: true })]));
  }

  /** Bytes an unfinished download of `digest` already holds on disk (its data file is sparse). */
  static async bytesOnDisk(blobs: BlobStore, digest: string): Promise<number> {
    const st = await stat(join(blobs.dir, base(digest))).catch(() => undefined);
    return st ? Math.min(st.size, st.blocks * 512) : 0;
  }
}
