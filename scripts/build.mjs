#!/usr/bin/env node
// Builds the two programs: each app's TypeScript (with packages/shared) bundled by esbuild into
// apps/<app>/dist as ES modules, one entry (cli.js) and the chunks that its dynamic imports load
// on demand. An app's `dependencies` stay external and are installed beside it: packages with
// native code or files of their own (node-llama-cpp, PGlite's WebAssembly, pg, the AWS SDK loaded
// only with S3). Pure-JavaScript libraries are `devDependencies` and are bundled in: Node resolves
// and compiles each module file of a package apart, and drizzle-orm alone is about two hundred
// files, a tenth of a second of every start before the first query. The files the code finds next to itself through `new URL("./x", import.meta.url)`
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
    // Worker scripts that import the project's TypeScript (page-aligned buffers from
    // packages/shared) are bundled, each into one file of its own.
    workers: [
      ["src/registry-client/range-worker.mjs", "range-worker.mjs"],
      [join(shared, "prefix-hash-worker.mjs"), "prefix-hash-worker.mjs"],
    ],
    assets: [
      ["src/runner/probe-load.mjs", "probe-load.mjs"],
      ["src/create/quantize/worker.mjs", "worker.mjs"],
      ["src/create/quantize/layout.mjs", "layout.mjs"],
      ["src/runner/vision/vision-child.mjs", "vision-child.mjs"],
      ["src/runner/vision/native-library.mjs", "native-library.mjs"],
      ["src/runner/vision/build-mtmd.mjs", "build-mtmd.mjs"],
      ["src/create/templates", "templates"],
    ],
  },
  {
    dir: "apps/registry",
    assets: [
      ["src/services/upload-hash-worker.mjs", "upload-hash-worker.mjs"],
      ["src/web/static", "static"],
      ["src/db/migrations", "migrations"],
    ],
    // The migrated database a fresh data directory is unpacked from, instead of running initdb.
    after: async (outdir) => (await import("../apps/registry/scripts/pgdata-template.mjs")).writePgdataTemplate(outdir),
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
    minifyWhitespace: true,
    minifySyntax: true,
    // Bundled CommonJS packages (commander) require Node's built-in modules; an ES module has no
    // `require` of its own, so each output file makes one.
    banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
    logLevel: "warning",
  });
  await mkdir(outdir, { recursive: true });
  for (const [from, to] of app.workers ?? []) {
    await build({ entryPoints: [resolve(dir, from)], outfile: join(outdir, to), bundle: true, format: "esm", platform: "node", target: "node20.10", minifyWhitespace: true, minifySyntax: true, legalComments: "none", logLevel: "warning" });
  }
  for (const [from, to] of app.assets) await cp(resolve(dir, from), join(outdir, to), { recursive: true });
  await app.after?.(outdir);
}

await Promise.all(apps.map(buildApp));

// libmtmd for image input (docs/vision.md): built once from node-llama-cpp's llama.cpp source and
// cached; without a compiler it prints one line and the daemon stays text-only.
const vision = await import("../apps/daemon/src/runner/vision/build-mtmd.mjs");
const visionLine = vision.describeVisionBuild(await vision.buildVision());
if (visionLine) process.stderr.write(visionLine + "\n");
