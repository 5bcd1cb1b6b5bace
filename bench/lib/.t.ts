import { writeRandomLlama } from "./random-llama.ts";
let t = performance.now();
await writeRandomLlama("/tmp/q/big.gguf", { embd: 1024, layers: 4, ff: 2816, heads: 8, kvHeads: 8, type: 1 });
console.log("gen", performance.now() - t);
