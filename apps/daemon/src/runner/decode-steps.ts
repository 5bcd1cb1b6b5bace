// Decoding in step: the generations on one loaded model ask for their next token together, so that
// llama.cpp decodes one token of every sequence in one batch (docs/daemon.md, "Parallel requests").
//
// node-llama-cpp batches whatever evaluations are queued when it dispatches, on the next turn of the
// event loop or at once when a batch has just finished. Each sequence's sampled token comes back from
// its own thread at its own moment, so left alone the sequences drift apart and most batches carry
// some of them only. Here each generation waits, before asking for its next token, until every
// generation of the model is waiting too, and then all go on the same later turn of the event loop:
// their evaluations are queued together and decoded as one batch. Which tokens a sequence gets does
// not change, only when they are computed. A new generation's prompt is not waited for: it goes in
// with the others' tokens as it comes, and the generation joins the steps with its first token.
//
// The counters say how the batches were made up; the debug log shows them as each generation ends.

import type { BatchItem, LlamaContextSequence, PrioritizedBatchItem, Token } from "node-llama-cpp";

/** One generation taking part in the steps. */
export interface StepMember {
  /** Waits until every generation of the model is ready for its next token. */
  step(): Promise<void>;
  /** Takes the generation out of the steps (it has ended); safe to call more than once. */
  leave(): void;
}

/** How the model's decode calls were made up since it was loaded. */
export interface DecodeCounts {
  /** Batches decoded. */
  decodes: number;
  /** Batches that held tokens of more than one sequence. */
  shared: number;
  /** Batches that left out a generation that was in step: what stepping exists to avoid. */
  partial: number;
  /** The most sequences one batch held. */
  widest: number;
}

export class DecodeSteps {
  private members = 0;
  private waiting: Array<() => void> = [];
  private releasing = false;
  readonly counts: DecodeCounts = { decodes: 0, shared: 0, partial: 0, widest: 0 };

  join(): StepMember {
    this.members++;
    let left = false;
    return {
      step: () => this.arrive(),
      leave: () => {
        if (left) return;
        left = true;
        this.members--;
        this.releaseIfAllWaiting();
      },
    };
  }

  private arrive(): Promise<void> {
    // Alone, there is nobody to wait for.
    if (this.members === 1 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.releaseIfAllWaiting();
    });
  }

  private releaseIfAllWaiting(): void {
    if (this.releasing || this.waiting.length === 0 || this.waiting.length < this.members) return;
    this.releasing = true;
    // On a later turn of the event loop: node-llama-cpp's dispatch, which goes on at once with
    // whatever is queued when a batch ends, is by then either over or waiting on native work, so
    // it cannot take some of the evaluations queued now without the others.
    setImmediate(() => {
      this.releasing = false;
      const go = this.waiting;
      this.waiting = [];
      for (const resolve of go) resolve();
    });
  }

  /**
   * The context's batch planner (node-llama-cpp's `batching.itemPrioritizationStrategy`): every
   * queued sequence gets an equal part of the batch, and what is left goes to those with more
   * tokens (prompts). It is called once for each batch, so it also keeps the counts.
   */
  readonly planBatch = ({ items, size }: { items: readonly BatchItem[]; size: number }): PrioritizedBatchItem[] => {
    const amounts = items.map(() => 0);
    let left = size;
    for (;;) {
      const open = items.flatMap((item, i) => (amounts[i]! < item.tokens.length ? [i] : []));
      if (left === 0 || open.length === 0) break;
      const share = Math.max(1, Math.floor(left / open.length));
      for (const i of open) {
        const add = Math.min(share, items[i]!.tokens.length - amounts[i]!, left);
        amounts[i]! += add;
        left -= add;
        if (left === 0) break;
      }
    }
    const plan = items.flatMap((item, i) => (amounts[i]! > 0 ? [{ item, processAmount: amounts[i]! }] : []));
    const c = this.counts;
    c.decodes++;
    if (plan.length > 1) c.shared++;
    if (plan.length < this.members) c.partial++;
    c.widest = Math.max(c.widest, plan.length);
    return plan;
  };
}

/**
 * The sequence as node-llama-cpp's completion sees it: the same object, except that each token its
 * `evaluate` makes is asked for in step with the model's other generations.
 */
export function inStep(seq: LlamaContextSequence, steps: DecodeSteps): LlamaContextSequence {
  return new Proxy(seq, {
    get(target, prop) {
      if (prop === "evaluate") return (tokens: Token[], options?: Parameters<LlamaContextSequence["evaluate"]>[1]) => stepped(target.evaluate(tokens, options), steps);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

type Evaluation = ReturnType<LlamaContextSequence["evaluate"]>;

async function* stepped(inner: Evaluation, steps: DecodeSteps): Evaluation {
  // The prompt is evaluated at once, in whatever batches the others' tokens are in, and the
  // generation steps with them from its first token on: a long prompt does not hold them up.
  let member: StepMember | undefined;
  try {
    let input: Token | Token[] | void = undefined;
    for (;;) {
      if (member) await member.step();
      const next = await inner.next(input);
      if (next.done) return;
      member ??= steps.join();
      input = yield next.value;
    }
  } finally {
    member?.leave();
    await inner.return();
  }
}
