#!/usr/bin/env node
// Builds libmtmd for image input when the package is installed (docs/vision.md), from the llama.cpp
// source node-llama-cpp ships. It needs git, cmake and a C++ compiler; without them it prints one
// line and the daemon runs text models as before. Never fails the install. In a checkout, dist/
// does not exist yet when npm runs this; `npm run build` builds the library there instead.
import { existsSync } from "node:fs";

const script = new URL("../dist/build-mtmd.mjs", import.meta.url);
if (existsSync(script)) {
  try {
    const { buildVision, describeVisionBuild } = await import(script.href);
    const line = describeVisionBuild(await buildVision());
    if (line) process.stderr.write(line + "\n");
  } catch (e) {
    process.stderr.write(`corral: image input is off: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}
