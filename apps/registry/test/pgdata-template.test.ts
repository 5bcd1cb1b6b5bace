// The migrated database a fresh embedded registry starts from (src/db/pgdata-template.ts): the
// build's archive unpacks into a working database that holds no secrets of its own (two registries
// made from it sign with different keys), only into an empty place, never outside it, and an
// archive that is damaged or holds anything but files and directories stops with a clear error.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openPGlite } from "../src/db/open.ts";
import { loadSecrets } from "../src/auth/secrets.ts";
import { accounts } from "../src/db/schema.ts";
import { installedPGliteVersion, unpackArchive, unpackTar, TEMPLATE_ARCHIVE, TEMPLATE_META, type TemplateMeta } from "../src/db/pgdata-template.ts";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "corral-pgdata-test-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A ustar archive of `entries`: type "0" file, "5" directory, "2" symbolic link. */
function tar(entries: Array<{ name: string; type?: "0" | "5" | "2"; data?: string; size?: number }>, opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? "");
    const h = Buffer.alloc(512);
    h.write(e.name, 0);
    h.write("0000644\0", 100);
    h.write(`${(e.size ?? data.length).toString(8).padStart(11, "0")}\0`, 124);
    h.write(e.type ?? "0", 156);
    h.write("ustar\0", 257);
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function archive(name: string, bytes: Buffer): string {
  const path = join(work, name);
  writeFileSync(path, bytes);
  return path;
}

test("the build's archive is for the installed PGlite, and a registry opened from it works", async () => {
  assert.ok(existsSync(join(dist, TEMPLATE_ARCHIVE)), "npm run build writes dist/pgdata.tar");
  const meta = JSON.parse(readFileSync(join(dist, TEMPLATE_META), "utf8")) as TemplateMeta;
  assert.equal(meta.pglite, installedPGliteVersion());
  const dir = join(work, "from-template", "db");
  assert.equal(unpackArchive(join(dist, TEMPLATE_ARCHIVE), dir), true);
  // The owner's alone: the database will hold the registry's signing keys.
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, "PG_VERSION")).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(join(work, "from-template")), ["db"], "no staging folder is left beside it");
  const db = await openPGlite(dir);
  try {
    // Migrated (the registry's tables are there), and empty.
    assert.deepEqual(await db.db.select().from(accounts), []);
  } finally {
    await db.close();
  }
});

test("two registries made from the archive do not share their signing keys", async () => {
  const keys: string[] = [];
  for (const name of ["a", "b"]) {
    const dir = join(work, `secrets-${name}`, "db");
    assert.equal(unpackArchive(join(dist, TEMPLATE_ARCHIVE), dir), true);
    const db = await openPGlite(dir);
    try {
      const s = await loadSecrets(db.db);
      keys.push(Buffer.from(s.tokenKey).toString("hex"), Buffer.from(s.urlKey).toString("hex"));
    } finally {
      await db.close();
    }
  }
  assert.equal(new Set(keys).size, 4, "each registry made its own token and URL keys on first use");
});

test("an archive unpacks only into a missing or empty place", () => {
  const a = archive("ok.tar", tar([{ name: "d/", type: "5" }, { name: "d/f", data: "hello" }]));
  const empty = join(work, "empty");
  mkdirSync(empty);
  assert.equal(unpackArchive(a, empty), true);
  assert.equal(readFileSync(join(empty, "d", "f"), "utf8"), "hello");
  const taken = join(work, "taken");
  mkdirSync(taken);
  writeFileSync(join(taken, "mine"), "keep");
  assert.equal(unpackArchive(a, taken), false);
  assert.deepEqual(readdirSync(taken), ["mine"]);
  assert.equal(readFileSync(join(taken, "mine"), "utf8"), "keep");
});

test("what an unpack killed half-way left beside the directory is removed by the next one", () => {
  const a = archive("ok2.tar", tar([{ name: "f", data: "x" }]));
  const parent = join(work, "killed");
  mkdirSync(join(parent, "db.unpacking-999999999"), { recursive: true });
  writeFileSync(join(parent, "db.unpacking-999999999", "half"), "");
  assert.equal(unpackArchive(a, join(parent, "db")), true);
  assert.deepEqual(readdirSync(parent), ["db"]);
});

test("entries that would leave the directory, links and damaged archives are refused", () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ["dot-dot", tar([{ name: "../escaped", data: "x" }]), /would land outside the data directory/],
    ["inner dot-dot", tar([{ name: "a/../../escaped", data: "x" }]), /would land outside the data directory/],
    ["absolute", tar([{ name: "/tmp/escaped", data: "x" }]), /would land outside the data directory/],
    ["symbolic link", tar([{ name: "link", type: "2" }]), /neither a file nor a directory/],
    ["cut short", tar([{ name: "f", data: "x", size: 4096 }], { end: false }), /cut short/],
    ["no end", tar([{ name: "f", data: "x" }], { end: false }), /no end marker/],
  ];
  for (const [what, bytes, message] of cases) {
    const into = join(work, `bad-${what.replace(/\W/g, "-")}`);
    mkdirSync(into);
    assert.throws(() => unpackTar(archive(`${what}.tar`, bytes), into), (e: Error) => message.test(e.message) && /rebuild with npm run build/.test(e.message), what);
    assert.equal(existsSync(join(work, "escaped")), false, what);
    assert.equal(existsSync("/tmp/escaped"), false, what);
  }
});
