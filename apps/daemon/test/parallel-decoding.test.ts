// Parallel decoding under a real daemon (docs/daemon.md, "Parallel requests"): concurrent greedy
// requests to one model decode in shared batches, and each answer is the one its request gets alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createModelFrom, debugEvents, startDaemon, waitForDebugEvent, type Daemon, type DebugEvent } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";

let daemon: Daemon;

// Four openings of the kind stories260K was trained on, each continued its own way.
const PROMPTS = ["Once upon a time", "One day, a little boy named Tom", "The sun was shining and the birds", "Lily and her mom went to the park"];

interface Answer {
  response: string;
  eval_count: number;
}

async function generate(prompt: string, extra: Record<string, unknown> = {}): Promise<Answer> {
  const r = await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story", prompt, stream: false, ...extra }) });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as Answer;
}

/**
 * The model's decode counts once the `count` generations after the first `seen` debug events have
 * logged their ends (the log is written asynchronously), as the last of them logged them.
 */
async function decodeCounts(seen: number, count: number): Promise<{ decodes: number; shared: number; partial: number; widest: number }> {
  const ends = (): DebugEvent[] => debugEvents(daemon).slice(seen).filter((e) => e.msg === "generation ended");
  await waitForDebugEvent(daemon, seen, () => ends().length >= count);
  const last = ends()[count - 1]!;
  const n = (k: string): number => last[k] as number;
  return { decodes: n("decodes"), shared: n("shared_decodes"), partial: n("partial_decodes"), widest: n("widest_decode") };
}

before(async () => {
  daemon = await startDaemon({ env: { CORRAL_NUM_PARALLEL: "4", CORRAL_DEBUG: "1" } });
  await createModelFrom(daemon, { model: "story", path: fixtures.stories260K, extra: { template: "{{ .Prompt }}", parameters: { temperature: 0, num_ctx: 512 } } });
});

after(async () => {
  await daemon?.stop();
});

for (const logprobs of [false, true]) {
  test(`four concurrent greedy requests share their batches and each gets its answer alone${logprobs ? " (with log-probabilities)" : ""}`, async () => {
    const extra = { options: { num_predict: 300 }, ...(logprobs ? { logprobs: true } : {}) };
    const seenAlone = debugEvents(daemon).length;
    const alone: Answer[] = [];
    for (const p of PROMPTS) alone.push(await generate(p, extra));
    const before = await decodeCounts(seenAlone, PROMPTS.length);
    // Long enough that the four overlap however their requests arrive: none ends early.
    for (const a of alone) assert.equal(a.eval_count, 300);
    assert.equal(new Set(alone.map((a) => a.response)).size, 4, "four different answers");
    const seen = debugEvents(daemon).length;
    const together = await Promise.all(PROMPTS.map((p) => generate(p, extra)));
    for (const [i, a] of together.entries()) {
      assert.equal(a.response, alone[i]!.response, `prompt ${JSON.stringify(PROMPTS[i])}`);
      assert.equal(a.eval_count, 300);
    }
    const after = await decodeCounts(seen, PROMPTS.length);
    const decodes = after.decodes - before.decodes;
    const shared = after.shared - before.shared;
    const partial = after.partial - before.partial;
    const counts = JSON.stringify({ decodes, shared, partial, widest: after.widest });
    // Alone, 4 × 300 tokens take 1200 decodes; together, most batches carry tokens of several.
    assert.ok(decodes < 1200 / 2, counts);
    assert.ok(shared > 300 / 2, counts);
    if (logprobs) {
      // The log-probability loop steps: a batch carries a token of every generation, and leaves
      // one out only around another's start (a batch of its prompt alone, or its joining between
      // the others' release and their batch); at most two a request.
      assert.equal(after.widest, 4, `the widest batch since the model loaded: ${counts}`);
      assert.ok(partial <= 2 * PROMPTS.length, counts);
    } else {
      assert.ok(after.widest >= 2, `the widest batch since the model loaded: ${counts}`);
    }
  });
}
