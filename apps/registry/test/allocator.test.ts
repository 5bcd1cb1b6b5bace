// The registry keeps heap memory that uploads freed instead of handing it back to the kernel after
// every garbage collection (ops/allocator.ts): checked in a child process, with Node's own
// buffers from malloc, the way the HTTP parser's body pieces come.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const allocator = new URL("../src/ops/allocator.ts", import.meta.url).href;

// Five rounds of 30 MB in 60 KB buffers, freed; each round reports how much of it left the
// process. Collections run until the buffers' memory is no longer counted, and a fixed number more
// (the freeing itself happens on V8's background thread).
const child = `
import { readFileSync } from "node:fs";
import { setImmediate as tick } from "node:timers/promises";
import { keepFreedUploadMemory } from ${JSON.stringify(allocator)};
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
keepFreedUploadMemory();
const given = [];
for (let round = 0; round < 5; round++) {
  gc();
  const base = process.memoryUsage().arrayBuffers;
  let bufs = [];
  for (let i = 0; i < 500; i++) bufs.push(Buffer.allocUnsafeSlow(60 << 10).fill(1));
  const full = rss();
  bufs = null;
  for (let n = 0; n < 1000 && process.memoryUsage().arrayBuffers > base + (1 << 20); n++) { gc(); await tick(); }
  for (let n = 0; n < 20; n++) { gc(); await tick(); }
  given.push(full - rss());
}
console.log(JSON.stringify(given));
`;

const glibc = process.platform === "linux" && Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

test("memory an upload's buffers freed stays in the process for the next ones", { skip: !glibc && "glibc only" }, async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", child], { cwd: root });
  const given = JSON.parse(stdout) as number[];
  assert.equal(given.length, 5);
  for (const bytes of given) assert.ok(bytes < 4 << 20, `a round handed ${(bytes / 1e6).toFixed(1)} MB back to the kernel: ${stdout.trim()}`);
});
