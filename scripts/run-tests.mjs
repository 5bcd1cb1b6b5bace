#!/usr/bin/env node
// Runs every test suite with node's built-in runner through tsx.
// Node 20's runner does not glob for .ts files itself, so the files are listed here.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const roots = ["packages", "apps"];
const files = [];
function walk(dir) {
  for (const entry of readdirSync(dir)) {
    if (entry === "node_modules" || entry === "fixtures") continue;
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith(".test.ts")) files.push(p);
  }
}
for (const root of roots) for (const pkg of readdirSync(root)) {
  const t = join(root, pkg, "test");
  try { if (statSync(t).isDirectory()) walk(t); } catch { /* package without tests */ }
}
walk("test");
const only = process.argv.slice(2);
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
files.sort();
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...selected], { stdio: "inherit" });
process.exit(r.status ?? 1);
