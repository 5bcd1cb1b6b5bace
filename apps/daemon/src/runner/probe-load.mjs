// Loads one GGUF with llama.cpp and exits: 0 when it loaded. Run as a child process by guard.ts,
// so that a file that makes llama.cpp abort takes down only this process.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const path = process.argv[2];
try {
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: path });
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  await context.dispose();
  await model.dispose();
  process.exit(0);
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
