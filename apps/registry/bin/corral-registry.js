#!/usr/bin/env node
// Runs the compiled program (dist/, made by `npm run build`); nothing is compiled at run time.
try {
  await import("../dist/cli.js");
} catch (e) {
  if (e?.code !== "ERR_MODULE_NOT_FOUND" || !String(e.message).includes("/dist/cli.js")) throw e;
  const dir = new URL("..", import.meta.url).pathname;
  process.stderr.write(`Error: ${dir} is not built; run \`npm run build\` in the repository first\n`);
  process.exit(1);
}
