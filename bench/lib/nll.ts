// Mean negative log-likelihood of a fixed text under a GGUF model, computed with node-llama-cpp
// from the raw logits (log-softmax over the whole vocabulary), so sampling settings play no part.
// Used to compare a quantized model with its F32 source.
import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";

// One engine for every call: each getLlama() registers its own exit hooks.
let engine: Promise<Llama> | undefined;

/** A short story in the style of TinyStories: simple words, the kind of text stories260K knows. */
export const STORY = [
  "Once upon a time, there was a little boy named Tim. Tim had a red ball that he loved very much.",
  "Every day, he played with the ball in the big green park near his house.",
  "One day, Tim kicked the ball too hard and it went over the fence. Tim was sad.",
  "He did not know what to do. Then a kind girl named Sue came to help him.",
  'Sue said, "Let\'s look for your ball together." They looked under a tree and behind a bush.',
  "At last they found the ball next to a little dog. The dog wagged its tail and wanted to play.",
  "Tim and Sue threw the ball for the dog, and the dog ran fast to get it.",
  "They laughed and played all day. When the sun went down, Tim went home happy.",
  "He had a new friend and a new dog to play with. The end.",
].join(" ");

/**
 * Mean NLL (nats per token) of `text` under the model at `modelPath`, over every token after the
 * first (BOS is prepended and not scored).
 */
export async function meanNLL(modelPath: string, text = STORY): Promise<{ nll: number; tokens: number }> {
  engine ??= getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error });
  const llama = await engine;
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  try {
    const tokens = model.tokenize(text, true);
    const context = await model.createContext({ contextSize: Math.max(256, tokens.length + 16), threads: 1 });
    try {
      const seq = context.getSequence();
      const out = await seq.controlledEvaluate(
        tokens.map((t, i) => (i < tokens.length - 1 ? [t, { generateNext: { logits: true } }] : t)),
      );
      let sum = 0;
      for (let i = 0; i < tokens.length - 1; i++) {
        const logits = out[i]?.next.logits;
        if (!logits) throw new Error(`no logits for position ${i}`);
        let max = -Infinity;
        for (const v of logits.values()) if (v > max) max = v;
        let z = 0;
        for (const v of logits.values()) z += Math.exp(v - max);
        const target = logits.get(tokens[i + 1]!);
        if (target === undefined) throw new Error(`no logit for token ${tokens[i + 1]} at position ${i}`);
        sum += Math.log(z) + max - target;
      }
      return { nll: sum / (tokens.length - 1), tokens: tokens.length - 1 };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}
