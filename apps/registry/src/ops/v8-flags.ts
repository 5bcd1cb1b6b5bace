// The V8 settings `serve` chooses, each unless the operator passed the flag on node's command line
// (Node refuses these in NODE_OPTIONS, so only the command line can carry a choice). They are set
// before anything they govern exists: the heap's growth applies from the next collection on, and
// WebAssembly flags are read when a module is compiled, which the embedded database does later.

import { setFlagsFromString } from "node:v8";

function setUnlessGiven(flag: string, value?: string): void {
  const name = flag.replace(/^--(no-)?/, "");
  if (process.execArgv.some((a) => a.replace(/^--(no-)?/, "").split("=")[0] === name)) return;
  setFlagsFromString(value === undefined ? flag : `${flag}=${value}`);
}

/**
 * How far the JavaScript heap may grow between full collections. Every 64 KB of an upload arrives
 * in a fresh buffer from Node's HTTP parser, and V8 counts those bytes against the old
 * generation's limit until a young collection frees them. With the default growth, a server whose
 * heap was trimmed while idle (V8's memory reducer) sets the limit a few megabytes above its live
 * size, so a large upload sets off a full collection every couple of megabytes: about 40 per GB,
 * 2 to 2.5 CPU-seconds of marking on top of a receive that costs about 3, on the same cores.
 * Letting the old generation grow to four times its live size (about 30 MB here) leaves room for
 * the young collections to free those buffers first; measured: 2–3 full collections per 1 GB
 * upload instead of 20–40, and pushes about a fifth faster.
 */
export function tuneHeapForUploads(): void {
  setUnlessGiven("--heap-growing-percent", "300");
}

/**
 * The embedded database (PGlite) is PostgreSQL compiled to a 9 MB WebAssembly module. V8 runs it
 * first with its baseline compiler and recompiles the functions that run often with its optimizing
 * one, on background threads: during start-up that is hundreds of milliseconds of CPU on every core,
 * and on a two-core machine it starves the first requests. Staying on the baseline compiler made a
 * start on an existing data directory about 0.3 s faster (1.11 s to 0.85 s, `npm run
 * bench:startup`); the registry's queries are small lookups, which ran as fast either way (3,000
 * inserts and 9,000 reads by key through PGlite), and only an aggregate over a whole table was
 * slower, by about a quarter. Not set on PostgreSQL, where no WebAssembly runs.
 */
export function keepEmbeddedDatabaseOnBaselineCompiler(): void {
  setUnlessGiven("--liftoff-only");
}
