#!/usr/bin/env node
// Builds the two programs: each app's TypeScript (with packages/shared) bundled by esbuild into
// apps/<app>/dist as ES modules, one entry (cli.js) and the chunks that its dynamic imports load
// on demand. Third-party packages stay external: they are the app's real dependencies, installed
// beside it. The files the code finds next to itself through `new URL("./x", import.meta.url)`
// (worker scripts, templates, migrations, static files) are copied into dist, where every chunk
// lives, so those URLs resolve the same way as in the sources.
//
// esbuild rather than tsc: one bundle per app needs no build of packages/shared to install apart
// (the npm tarballs carry what they use of it), and a handful of files start faster than the
// hundred modules tsc would emit. Types are checked by `npm run typecheck`, not here.

import { build } from "esbuild";
import { cp, mkdir, readFile, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const shared = join(root, "packages/shared/src");

const apps = [
  {
    dir: "apps/daemon",
    assets: [
      ["src/registry-client/range-worker.mjs", "range-worker.mjs"],
      ["src/runner/probe-load.mjs", "probe-load.mjs"],
      ["src/create/quantize/worker.mjs", "worker.mjs"],
      ["src/create/quantize/layout.mjs", "layout.mjs"],
      ["src/create/templates", "templates"],
      [join(shared, "prefix-hash-worker.mjs"), "prefix-hash-worker.mjs"],
    ],
  },
  {
    dir: "apps/registry",
    assets: [
      ["src/web/static", "static"],
      ["src/db/migrations", "migrations"],
    ],
  },
];

async function buildApp(app) {
  const dir = join(root, app.dir);
  const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
  const external = Object.keys(pkg.dependencies ?? {}).flatMap((name) => [name, `${name}/*`]);
  const outdir = join(dir, "dist");
  await rm(outdir, { recursive: true, force: true });
  await build({
    entryPoints: { cli: join(dir, "src/cli/main.ts") },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20.10",
    external,
    // Chunks sit beside the entry, so `./asset` next to any of them is dist/asset.
    chunkNames: "[name]-[hash]",
    jsx: "automatic",
    jsxImportSource: "hono/jsx",
    legalComments: "none",
    logLevel: "warning",
  });
  await mkdir(outdir, { recursive: true });
  for (const [from, to] of app.assets) await cp(resolve(dir, from), join(outdir, to), { recursive: true });
}

await Promise.all(apps.map(buildApp));
