#!/usr/bin/env node
// Runs the test suites with node's built-in runner through tsx.
// Node 20's runner does not glob for .ts files itself, so the files are listed here. No test has a
// time limit: how long one takes depends on the machine.
//
//   node scripts/run-tests.mjs [--fast] [substring ...]
//
// With substrings, only the files whose path contains one of them. With --fast, only the
// unit-level suites: files under packages/*/test and apps/*/test that start no process (no daemon,
// registry, database, S3 server or browser). That is decided by following imports, not by a list:
// a suite is not fast when any module it reaches through its imports (its own, the test helpers',
// the application code it tests) imports node:child_process, node:cluster or playwright-core. A new
// suite that starts processes through any helper is therefore never counted as fast.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { spawnSync } from "node:child_process";

// ---- which suites start processes ----

/** Modules that start processes when imported and used. */
const STARTERS = new Set(["node:child_process", "child_process", "node:cluster", "cluster", "playwright-core", "playwright"]);
const verdicts = new Map();

/** True when `file`, or any module it reaches through its imports, imports a process starter. */
function startsProcesses(file) {
  const cached = verdicts.get(file);
  if (cached !== undefined) return cached;
  verdicts.set(file, false); // an import cycle adds nothing the rest of the walk does not see
  let verdict = false;
  for (const spec of importsOf(file)) {
    if (STARTERS.has(spec)) verdict = true;
    else {
      const target = resolveImport(spec, file);
      if (target && startsProcesses(target)) verdict = true;
    }
    if (verdict) break;
  }
  verdicts.set(file, verdict);
  return verdict;
}

/** The specifiers a module loads at run time: static imports and re-exports, import() and require() of literals. */
function importsOf(file) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const specs = [];
  // `import type … from` loads nothing at run time; every other form does.
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?["']([^"']+)["']/gm)) specs.push(m[1]);
  for (const m of text.matchAll(/\b(?:import|require)\s*\(\s*["']([^"']+)["']\s*\)/g)) specs.push(m[1]);
  return specs;
}

/** The repository file a specifier names, or undefined for packages outside the repository. */
function resolveImport(spec, from) {
  let base;
  if (spec.startsWith(".")) base = resolve(dirname(from), spec);
  else {
    const m = /^(@corral\/[^/]+)\/(.+)$/.exec(spec);
    if (!m) return undefined;
    const pkg = resolve("node_modules", m[1]);
    let pattern;
    try {
      pattern = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).exports?.["./*"];
    } catch {
      return undefined;
    }
    if (typeof pattern !== "string") return undefined;
    base = resolve(pkg, pattern.replace("*", m[2]));
  }
  for (const candidate of [base, `${base}.ts`, `${base}.mjs`, `${base}.js`, join(base, "index.ts")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

// ---- the run ----

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
files.sort();

const args = process.argv.slice(2);
const fast = args.includes("--fast");
const only = args.filter((a) => a !== "--fast");
let selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
if (fast) {
  const before = selected.length;
  selected = selected.filter((f) => /^(packages|apps)\/[^/]+\/test\//.test(f.split("\\").join("/")) && !startsProcesses(resolve(f)));
  process.stderr.write(`--fast: ${selected.length} of ${before} suites; the others start processes\n`);
}
if (selected.length === 0) {
  process.stderr.write(`no test file matches ${only.join(", ")}\n`);
  process.exit(1);
}
// The runner's own report (spec on a terminal, TAP otherwise, as without --test-reporter), then
// the failed tests again at the end, where a log cut to its last lines still shows them.
const reporters = [
  "--test-reporter", process.stdout.isTTY ? "spec" : "tap", "--test-reporter-destination", "stdout",
  "--test-reporter", "./scripts/failure-summary.mjs", "--test-reporter-destination", "stdout",
];
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...reporters, ...selected], { stdio: "inherit" });
process.exit(r.status ?? 1);
