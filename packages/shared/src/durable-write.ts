// Making a file appear under its name only once its bytes are on disk, so that a crash or power
// loss leaves either the old file or the complete new one, never a name over missing bytes. The
// order matters: write a temporary file beside the target, fsync it, rename it over the target,
// then fsync the directory, which is what makes the rename itself survive.

import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";

/** Flushes a directory's entries (a rename or a new file in it) to disk. */
export async function syncDirectory(dir: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(dir, "r");
  } catch (e) {
    // Some platforms (Windows) cannot open a directory; there a rename is as durable as it gets.
    if (cannotSyncDirectory(e)) return;
    throw e;
  }
  try {
    await fh.sync();
  } catch (e) {
    if (!cannotSyncDirectory(e)) throw e;
  } finally {
    await fh.close();
  }
}

function cannotSyncDirectory(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "EISDIR" || code === "EPERM" || code === "EINVAL" || code === "EACCES";
}

/** Writes `data` to `path` and flushes it to disk before returning (the temporary half of a durable write). */
export async function writeSynced(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const fh = await open(path, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Moves a complete file into place durably: flushes its bytes (a no-op when the writer already
 * did), renames it over `to` (same directory or at least the same filesystem), flushes the directory.
 */
export async function renameDurably(from: string, to: string): Promise<void> {
  const fh = await open(from, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(from, to);
  await syncDirectory(dirname(to));
}

export interface DurableWriteOptions {
  /** The temporary file, beside `path`; default `<path>.tmp`. Whoever cleans up leftovers must know this name. */
  tmp?: string;
  mode?: number;
}

/** Replaces `path` with `data` durably: temporary file, fsync, rename, fsync of the directory. */
export async function writeFileDurably(path: string, data: Uint8Array | string, opts: DurableWriteOptions = {}): Promise<void> {
  const tmp = opts.tmp ?? `${path}.tmp`;
  try {
    await writeSynced(tmp, data, opts.mode);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDirectory(dirname(path));
}
