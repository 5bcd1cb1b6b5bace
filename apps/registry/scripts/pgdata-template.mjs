#!/usr/bin/env node
// Makes the embedded database a fresh data directory starts from (src/db/pgdata-template.ts reads
// it): PGlite's initdb in a temporary directory, the registry's migrations, a clean shutdown, and the
// directory packed as pgdata.tar (plain ustar, uncompressed) with pgdata.json naming the PGlite
// version that wrote it. It holds no secrets: the registry creates its keys on its first start.
//   node apps/registry/scripts/pgdata-template.mjs <out dir>
// initdb takes seconds, so the result is kept in node_modules/.cache under a key made of the PGlite
// version, the migrations and this script, and a build with none of them changed copies it.

import { createHash } from "node:crypto";
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const app = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const migrationsFolder = join(app, "src/db/migrations");
const cacheDir = resolve(app, "../../node_modules/.cache/corral-registry");
export const ARCHIVE = "pgdata.tar";
export const META = "pgdata.json";

/** The installed PGlite's version (the package exports no package.json, but does export its .wasm). */
function pgliteVersion() {
  const wasm = fileURLToPath(import.meta.resolve("@electric-sql/pglite/pglite.wasm"));
  return readFile(join(dirname(wasm), "..", "package.json"), "utf8").then((s) => JSON.parse(s).version);
}

async function filesUnder(dir) {
  const out = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push({ path: p, dir: true }, ...(await filesUnder(p)));
    else if (e.isFile()) out.push({ path: p, dir: false });
    else throw new Error(`${p}: neither a file nor a directory`);
  }
  return out;
}

/** A ustar header: only plain files and directories, names under 100 bytes (a data directory's are). */
function header(name, mode, size, dir) {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) >= 100) throw new Error(`${name}: name too long for the archive`);
  h.write(name, 0);
  h.write(`${(mode & 0o777).toString(8).padStart(7, "0")}\0`, 100);
  h.write("0000000\0", 108); // uid
  h.write("0000000\0", 116); // gid
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  h.write("00000000000\0", 136); // mtime: the archive is the same for the same contents
  h.write("        ", 148); // checksum, counted as spaces
  h.write(dir ? "5" : "0", 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return h;
}

async function tar(root) {
  const parts = [];
  for (const f of await filesUnder(root)) {
    const name = relative(root, f.path).split(sep).join("/");
    const s = await stat(f.path);
    if (f.dir) {
      parts.push(header(`${name}/`, s.mode, 0, true));
      continue;
    }
    const data = await readFile(f.path);
    parts.push(header(name, s.mode, data.length, false), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function cacheKey(version) {
  const h = createHash("sha256").update(`pglite ${version}\n`).update(await readFile(fileURLToPath(import.meta.url)));
  for (const f of await filesUnder(migrationsFolder)) {
    if (!f.dir) h.update(relative(migrationsFolder, f.path)).update("\0").update(await readFile(f.path));
  }
  return h.digest("hex").slice(0, 16);
}

async function make(into) {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  const work = await mkdtemp(join(tmpdir(), "corral-pgdata-"));
  try {
    const dataDir = join(work, "db");
    const client = new PGlite(dataDir);
    try {
      await migrate(drizzle(client), { migrationsFolder });
    } finally {
      // A clean shutdown: the copy starts without recovery, like a database that was stopped.
      await client.close();
    }
    const archive = await tar(dataDir);
    const journal = JSON.parse(await readFile(join(migrationsFolder, "meta/_journal.json"), "utf8"));
    const meta = { pglite: await pgliteVersion(), migrations: journal.entries.map((e) => e.tag) };
    await mkdir(into, { recursive: true });
    await writeFile(join(into, ARCHIVE), archive);
    await writeFile(join(into, META), JSON.stringify(meta, null, 2) + "\n");
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Writes pgdata.tar and pgdata.json into `out`, from the cache when nothing they depend on changed. */
export async function writePgdataTemplate(out) {
  const cached = join(cacheDir, `pgdata-${await cacheKey(await pgliteVersion())}`);
  const present = await stat(join(cached, META)).then(() => true, () => false);
  if (!present) {
    const staging = `${cached}.${process.pid}.tmp`;
    await rm(staging, { recursive: true, force: true });
    await make(staging);
    // Another build may have got there first: its copy is as good (the key names the inputs).
    await rename(staging, cached).catch(async (e) => {
      await rm(staging, { recursive: true, force: true });
      if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e;
    });
  }
  await mkdir(out, { recursive: true });
  for (const f of [ARCHIVE, META]) await cp(join(cached, f), join(out, f));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: pgdata-template.mjs <out dir>");
    process.exit(2);
  }
  await writePgdataTemplate(resolve(out));
}
