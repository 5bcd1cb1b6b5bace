// Writes a random-weight F16 llama of about a given size, for scripts that cannot import
// TypeScript themselves (bench/gpu.mjs runs it with `node --import tsx`):
//   node --import tsx bench/lib/write-random-llama.ts OUT.gguf SIZE_MB
import { writeRandomLlama } from "./random-llama.ts";

const [out, sizeArg] = process.argv.slice(2);
const sizeMB = Number(sizeArg);
if (!out || !(sizeMB > 0)) {
  process.stderr.write("usage: write-random-llama.ts OUT.gguf SIZE_MB\n");
  process.exit(2);
}
// Shapes of a ~1B llama (embd 2048, ff 5632, grouped-query attention): ~88 MB of F16 per layer,
// so the size is reached with whole layers.
const embd = 2048;
const ff = 5632;
const heads = 16;
const kvHeads = 4;
const perLayer = 2 * (2 * embd * embd + 2 * embd * (embd / heads) * kvHeads + 3 * embd * ff);
const layers = Math.max(1, Math.round((sizeMB * 2 ** 20) / perLayer));
await writeRandomLlama(out, { embd, layers, ff, heads, kvHeads, type: 1, neverEnd: true });
process.stdout.write(`${layers}\n`);
