#!/usr/bin/env node
// Fails when the registry's schema (apps/registry/src/db/schema.ts) says something its migrations do
// not: drizzle-kit generate is run against a copy of the migrations folder, and any migration it
// writes there is drift. The repository's own folder is never touched. drizzle-kit resolves `out`
// against its working directory, so it runs in the temporary one.
//   node scripts/check-schema-drift.mjs
import { spawnSync } from "node:child_process";
import { cp, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const migrations = join(root, "apps/registry/src/db/migrations");
const work = await mkdtemp(join(tmpdir(), "corral-drift-"));
try {
  const out = join(work, "migrations");
  await cp(migrations, out, { recursive: true });
  const config = join(work, "drizzle.config.mjs");
  await writeFile(config, `export default ${JSON.stringify({ dialect: "postgresql", schema: join(root, "apps/registry/src/db/schema.ts"), out: "./migrations" })};\n`);
  const before = new Set(await readdir(out));
  const r = spawnSync(process.execPath, [join(root, "node_modules/drizzle-kit/bin.cjs"), "generate", "--config", config], { cwd: work, encoding: "utf8" });
  // drizzle-kit reports some failures (an unreadable snapshot) with exit code 0.
  if (r.status !== 0 || /^Error/m.test(r.stderr + r.stdout)) {
    process.stderr.write(`drizzle-kit generate failed:\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
  const added = (await readdir(out)).filter((f) => !before.has(f));
  if (added.length > 0) {
    process.stderr.write(
      `apps/registry/src/db/schema.ts differs from its migrations (drizzle-kit would write ${added.join(", ")}): ` +
        "run npx drizzle-kit generate --config apps/registry/drizzle.config.ts and commit the migration\n",
    );
    process.exit(1);
  }
  process.stdout.write("schema and migrations agree\n");
} finally {
  await rm(work, { recursive: true, force: true });
}
