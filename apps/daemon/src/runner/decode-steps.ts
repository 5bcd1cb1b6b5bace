// How concurrent generations on one loaded model share llama.cpp's batches (docs/daemon.md,
// "Parallel requests"). node-llama-cpp batches whatever evaluations are queued when it dispatches,
// on the next turn of the event loop or at once when a batch has just finished.
//
// node-llama-cpp's completion (the path without log-probabilities) is left to that: its sequences
// drift apart, so a batch carries three of four sequences more often than four, but a sequence's
// token is sampled while the others decode, and on the 2-core machine of the README's figures that
// overlap is worth more than full batches (4 clients against 1: 1.65× unstepped against 1.0×
// stepped on a Q4_0 model, 1.64× against 1.41× on F16).
//
// The log-probability loop (logprob-generation.ts) evaluates through `controlledEvaluate`, which
// node-llama-cpp dispatches as soon as it is queued: left alone almost every batch would hold one
// sequence. There each generation steps: before asking for its next token it waits until every
// stepping generation of the model is waiting too, and then all go on the same later turn of the
// event loop, so their evaluations are decoded as one batch. Which tokens a sequence gets does not
// change, only when they are computed; a new generation's prompt is not waited for.
//
// The counters say how the batches were made up; the debug log shows them as each generation ends.

import type { BatchItem, PrioritizedBatchItem } from "node-llama-cpp";

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
