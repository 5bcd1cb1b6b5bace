// GGUF: header reading, writing, and llama.cpp split sets.
export * from "./types.ts";
export * from "./reader.ts";
export * from "./writer.ts";
export * from "./split.ts";
