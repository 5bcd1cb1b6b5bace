// Absolute paths of the shared test fixtures (see test/fixtures/PROVENANCE.md).
import { fileURLToPath } from "node:url";

const dir = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

export const fixturesDir = fileURLToPath(new URL("./fixtures/", import.meta.url));

export const fixtures = {
  /** Karpathy's trained TinyStories 260K llama: GGUF v3, 48 F32 tensors, 19 KV. */
  stories260K: dir("stories260K.gguf"),
  /** Random-weight tiny Llama-2: GGUF v3, 12 tensors (F16 + F32), general.file_type 1, 32000-token vocab. */
  tinyRandomLlama2: dir("llama-2-tiny-random.gguf"),
  /** llama.cpp's vocabulary-only Llama SPM GGUF: 0 tensors, ends right after the header. */
  vocabLlamaSpm: dir("ggml-vocab-llama-spm.gguf"),
} as const;
