// A new embedded database, unpacked from the one the build made instead of created by initdb.
// PGlite creates a database by running initdb in a second WebAssembly instance (bootstrap, the
// system catalogs, three databases): most of a fresh start's ten seconds, and hundreds of megabytes
// of memory that the process then keeps. The build (apps/registry/scripts/pgdata-template.mjs) does
// that once, applies the migrations, shuts the database down cleanly and packs its directory as
// pgdata.tar beside the compiled code, with the PGlite version that wrote it in pgdata.json. A data
// directory without a database becomes that archive, unpacked into a sibling folder and renamed
// into place, so that a start killed half-way leaves no half-made database to be mistaken for one.
// Without an archive (running the sources) or with another PGlite installed, initdb runs as before.
//
// The archive is not compressed: inflating its 40 MB cost a fresh start more CPU time than writing
// it out (npm's tarball and image layers compress it anyway). Nothing is flushed to the disk before
// the rename: PGlite never flushes its own writes either (its fdatasync does nothing), so the
// rename guards against a killed process, as PGlite's own files do, not against a power cut.

import { closeSync, mkdirSync, openSync, readSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { processAlive } from "../ops/process-alive.ts";

export const TEMPLATE_ARCHIVE = "pgdata.tar";
export const TEMPLATE_META = "pgdata.json";

export interface TemplateMeta {
  /** The @electric-sql/pglite version that wrote the archive: only that version reads it. */
  pglite: string;
  /** The migrations applied in it, by tag. */
  migrations: string[];
}

const here = (name: string): string => fileURLToPath(new URL(`./${name}`, import.meta.url));

/** The installed PGlite's version, from the package.json above the WebAssembly file it exports. */
export function installedPGliteVersion(): string | undefined {
  try {
    const wasm = fileURLToPath(import.meta.resolve("@electric-sql/pglite/pglite.wasm"));
    const version = (JSON.parse(readFileSync(join(dirname(wasm), "..", "package.json"), "utf8")) as { version?: unknown }).version;
    return typeof version === "string" ? version : undefined;
  } catch {
    return undefined;
  }
}

/** The build's archive, if there is one and the installed PGlite wrote it. */
function usableTemplate(): string | undefined {
  let meta: Partial<TemplateMeta>;
  try {
    meta = JSON.parse(readFileSync(here(TEMPLATE_META), "utf8")) as Partial<TemplateMeta>;
  } catch {
    return undefined;
  }
  return meta.pglite && meta.pglite === installedPGliteVersion() ? here(TEMPLATE_ARCHIVE) : undefined;
}

const BLOCK = 512;
/** Bytes copied at a time: files are streamed from the archive, never held whole. */
const CHUNK = 1 << 20;

function text(h: Buffer, at: number, len: number): string {
  const raw = h.subarray(at, at + len);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? len : end).toString("utf8");
}

function damaged(archive: string, what: string): Error {
  return new Error(`${archive} is damaged: ${what} (rebuild with npm run build)`);
}

function readFully(fd: number, buf: Buffer, len: number, pos: number): void {
  for (let got = 0; got < len; ) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) throw new Error("cut short");
    got += n;
  }
}

/**
 * Writes the plain files and directories of the ustar archive `archive` under `into` (which must
 * exist), each directory 0700 and each file 0600: the database holds the registry's signing keys.
 * Anything else in the archive (a link, a path leaving `into`) stops it.
 */
export function unpackTar(archive: string, into: string): void {
  const fd = openSync(archive, "r");
  try {
    const header = Buffer.alloc(BLOCK);
    const chunk = Buffer.alloc(CHUNK);
    for (let pos = 0; ; ) {
      try {
        readFully(fd, header, BLOCK, pos);
      } catch {
        throw damaged(archive, "no end marker");
      }
      if (header.every((b) => b === 0)) return;
      const prefix = text(header, 345, 155);
      const name = prefix ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100);
      const segments = name.split("/").filter((s) => s !== "");
      if (name.startsWith("/") || segments.length === 0 || segments.some((s) => s === "." || s === "..")) {
        throw damaged(archive, `entry ${JSON.stringify(name)} would land outside the data directory`);
      }
      const sizeField = text(header, 124, 12).trim();
      if (!/^[0-7]{1,11}$/.test(sizeField)) throw damaged(archive, `bad size for ${name}`);
      const size = parseInt(sizeField, 8);
      const path = join(into, ...segments);
      const type = String.fromCharCode(header[156]!);
      pos += BLOCK;
      if (type === "5") {
        mkdirSync(path, { recursive: true, mode: 0o700 });
      } else if (type === "0" || type === "\0") {
        const out = openSync(path, "wx", 0o600);
        try {
          for (let done = 0; done < size; ) {
            const n = Math.min(CHUNK, size - done);
            try {
              readFully(fd, chunk, n, pos + done);
            } catch {
              throw damaged(archive, `${name} is cut short`);
            }
            for (let w = 0; w < n; ) w += writeSync(out, chunk, w, n - w);
            done += n;
          }
        } finally {
          closeSync(out);
        }
      } else {
        throw damaged(archive, `${name} is neither a file nor a directory`);
      }
      pos += Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    closeSync(fd);
  }
}

const stagingPrefix = (dir: string): string => `${basename(dir)}.unpacking-`;

/** Removes what an unpack that was killed left beside `dir` (its process is gone). */
function removeAbandoned(dir: string): void {
  for (const name of readdirSync(dirname(dir))) {
    if (!name.startsWith(stagingPrefix(dir))) continue;
    const pid = Number(name.slice(stagingPrefix(dir).length));
    if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) rmSync(join(dirname(dir), name), { recursive: true, force: true });
  }
}

/** True when `dir` is missing or an empty directory: no database, and nothing anyone put there. */
function empty(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw e;
  }
}

/**
 * Unpacks `archive` as the directory `dir`, which must be missing or empty: into a sibling folder,
 * then renamed into place. False when something appeared at `dir` meanwhile (another process).
 */
export function unpackArchive(archive: string, dir: string): boolean {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  removeAbandoned(dir);
  const staging = join(parent, `${stagingPrefix(dir)}${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    mkdirSync(staging, { mode: 0o700 });
    unpackTar(archive, staging);
    try {
      // An empty directory in the way (made by hand, or by a start that failed before initdb) gives way.
      rmdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOTEMPTY" || (e as NodeJS.ErrnoException).code === "EEXIST") return false;
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    try {
      renameSync(staging, dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOTEMPTY" || (e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw e;
    }
    return true;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Makes `dir` the build's migrated database when it holds nothing yet and there is an archive for
 * the installed PGlite; false when it left `dir` alone (something is there, or no usable archive).
 */
export function unpackTemplate(dir: string): boolean {
  if (!empty(dir)) return false;
  const archive = usableTemplate();
  return archive ? unpackArchive(archive, dir) : false;
}
