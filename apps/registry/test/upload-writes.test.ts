// The filesystem store answers a chunk once its bytes are queued for the disk, while its last
// megabytes are still being written (storage/filesystem.ts, UploadWriter). The store's close waits
// for those writes, and one that fails after the answer must still fail the upload: checked in a
// child process whose file size is limited (prlimit --fsize), so that the writes past the limit
// fail with EFBIG. Node ignores SIGXFSZ, so the failure comes back as an error, not a signal.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { FilesystemBlobStore } from "../src/storage/filesystem.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const store = new URL("../src/storage/filesystem.ts", import.meta.url).href;
const MB = 1 << 20;

// A first chunk of 4 MiB, a second of 4 MiB that crosses the 6 MiB limit, then the commit of
// 8 MiB. What each step answered is printed: "ok", or the failed call of the error.
const child = `
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { FilesystemBlobStore } from ${JSON.stringify(store)};
const dir = mkdtempSync(join(tmpdir(), "corral-upload-writes-"));
const store = await new FilesystemBlobStore(dir).init();
const id = randomUUID();
const outcome = {};
const step = async (name, fn) => {
  try {
    await fn();
    outcome[name] = "ok";
  } catch (e) {
    outcome[name] = e.syscall ?? e.code ?? e.message;
  }
};
try {
  await store.createUpload(id);
  await step("first", () => store.append(id, 0, Readable.from([randomBytes(${4 * MB})]), { length: ${4 * MB} }));
  await step("second", () => store.append(id, ${4 * MB}, Readable.from([randomBytes(${4 * MB})]), { length: ${4 * MB} }));
  if (outcome.second === "ok") await step("commit", () => store.commit(id, ${8 * MB}, "sha256:" + "0".repeat(64)));
  await store.discardUpload(id);
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(outcome));
`;

const prlimit = ["/usr/bin/prlimit", "/bin/prlimit"].find((p) => existsSync(p));

test("a write that fails after its chunk was answered fails the upload's commit", { skip: !prlimit && "needs prlimit (util-linux)" }, async () => {
  const { stdout } = await promisify(execFile)(prlimit!, [`--fsize=${6 * MB}`, process.execPath, "--import", "tsx", "--input-type=module", "-e", child], { cwd: root });
  const outcome = JSON.parse(stdout) as Record<string, string>;
  assert.equal(outcome["first"], "ok", stdout);
  // Either the second chunk's own answer carries the failure (its writes failed before it was
  // answered), or the commit does. A commit that got as far as its own ftruncate past the limit
  // would mean the write's failure was lost.
  if (outcome["second"] === "ok") assert.equal(outcome["commit"], "write", `the commit should raise the failed write: ${stdout}`);
  else assert.equal(outcome["second"], "write", stdout);
});

test("the bytes of an answered chunk reach the file before the store lets go of it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "corral-upload-writes-"));
  try {
    const store = await new FilesystemBlobStore(dir).init();
    const id = randomUUID();
    await store.createUpload(id);
    const data = randomBytes(8 * MB + 123);
    assert.equal(await store.append(id, 0, Readable.from([data]), { length: data.length }), data.length);
    await store.close();
    assert.ok((await readFile(join(dir, "uploads", id))).equals(data), "the upload's file holds every byte of the answered chunk");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
