// Template autodetection at create (docs/daemon.md, "Create"): a GGUF's
// `tokenizer.chat_template` (Jinja) is compared with the known Jinja templates of each chat format,
// and the nearest one, when fewer than 100 edits away, supplies our Go template and stop list.
// The files live in ./templates/ (PROVENANCE.md there): `<name>.gotmpl` and `<name>.json` for each
// family, and one or more real Jinja templates of that family as references.

import { readFileSync } from "node:fs";

/** A chat template is accepted when its edit distance to a reference is below this. */
export const MAX_TEMPLATE_DISTANCE = 100;

export interface DetectedTemplate {
  name: string;
  /** Our Go template for the family (Ollama TEMPLATE syntax). */
  template: string;
  /** Default parameters that come with it. */
  parameters?: { stop: string[] };
}

/**
 * The families, the Jinja files each is recognised by, and the markup a template must (and must not)
 * contain to be taken for it. Short templates of different formats can be fewer than 100 edits
 * apart (zephyr and phi-3 are 97; openchat is 65 from ChatML), so a near miss whose special tokens
 * belong to another format is not accepted. Order breaks ties.
 */
const FAMILIES: ReadonlyArray<{ name: string; references: readonly string[]; requires: readonly string[]; excludes?: readonly string[] }> = [
  { name: "chatml", references: ["chatml.jinja", "chatml.qwen2.5-7b-instruct.jinja"], requires: ["<|im_start|>"] },
  {
    name: "llama3-instruct",
    references: ["llama3-instruct.jinja", "llama3-instruct.llama-3.1-8b-instruct.jinja", "llama3-instruct.llama-3.2-3b-instruct.jinja"],
    requires: ["<|start_header_id|>"],
  },
  { name: "llama2-chat", references: ["llama2-chat.jinja"], requires: ["[INST]", "<<SYS>>"] },
  {
    name: "mistral-instruct",
    references: ["mistral-instruct.jinja", "mistral-instruct.mistral-nemo-instruct-2407.jinja"],
    requires: ["[INST]"],
  },
  { name: "gemma-instruct", references: ["gemma-instruct.jinja"], requires: ["<start_of_turn>"] },
  { name: "phi-3", references: ["phi-3.jinja", "phi-3.phi-3-mini-gguf.jinja"], requires: ["<|end|>"] },
  { name: "zephyr", references: ["zephyr.jinja"], requires: ["<|user|>", "<|assistant|>"], excludes: ["<|end|>"] },
  { name: "vicuna", references: ["vicuna.jinja"], requires: ["USER:", "ASSISTANT:"] },
  { name: "alpaca", references: ["alpaca.jinja"], requires: ["### Instruction:", "### Response:"] },
];

interface Family {
  name: string;
  references: Int32Array[];
  accepts: (jinja: string) => boolean;
  template: string;
  parameters?: { stop: string[] };
}

let families: Family[] | undefined;

function loadFamilies(): Family[] {
  if (families) return families;
  const dir = new URL("./templates/", import.meta.url);
  const read = (file: string): string => readFileSync(new URL(file, dir), "utf8");
  families = FAMILIES.map(({ name, references, requires, excludes = [] }) => {
    const family: Family = {
      name,
      references: references.map((f) => codePoints(read(f))),
      accepts: (jinja) => requires.every((m) => jinja.includes(m)) && !excludes.some((m) => jinja.includes(m)),
      template: read(`${name}.gotmpl`),
    };
    const params = parseParams(read(`${name}.json`), `${name}.json`);
    if (params) family.parameters = params;
    return family;
  });
  return families;
}

function parseParams(text: string, file: string): { stop: string[] } | undefined {
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null) throw new Error(`templates/${file}: expected a JSON object`);
  const stop = (value as Record<string, unknown>)["stop"];
  if (stop === undefined) return undefined;
  if (!Array.isArray(stop) || !stop.every((s): s is string => typeof s === "string")) {
    throw new Error(`templates/${file}: "stop" must be an array of strings`);
  }
  return { stop };
}

/**
 * The built-in family whose reference Jinja is nearest to `chatTemplate`, when it is fewer than
 * MAX_TEMPLATE_DISTANCE edits away and carries the family's markup; undefined otherwise.
 */
export function detectTemplate(chatTemplate: string): DetectedTemplate | undefined {
  const nearest = nearestTemplate(chatTemplate);
  if (!nearest) return undefined;
  const family = loadFamilies().find((f) => f.name === nearest.name)!;
  const out: DetectedTemplate = { name: family.name, template: family.template };
  if (family.parameters) out.parameters = { stop: [...family.parameters.stop] };
  return out;
}

/** The nearest family and its distance, or undefined when none is within the cut-off. */
export function nearestTemplate(chatTemplate: string): { name: string; distance: number } | undefined {
  if (chatTemplate === "") return undefined;
  const input = codePoints(chatTemplate);
  let best: { name: string; distance: number } | undefined;
  for (const family of loadFamilies()) {
    if (!family.accepts(chatTemplate)) continue;
    for (const ref of family.references) {
      // Anything at or beyond the best so far cannot win, so the search band narrows as it goes.
      const limit = (best ? best.distance : MAX_TEMPLATE_DISTANCE) - 1;
      if (limit < 0) return best;
      const d = editDistanceWithin(input, ref, limit);
      if (d <= limit) best = { name: family.name, distance: d };
    }
  }
  return best;
}

/**
 * Levenshtein distance between two code-point sequences when it is at most `max`; otherwise any
 * value above `max`.
 *
 * Written here rather than taken from npm: no Levenshtein package is installed, and the general
 * ones fill the whole n×m table. Templates run to several thousand characters and only "closer than
 * 100" matters, so this keeps to the diagonal band |i − j| ≤ max (Ukkonen's cut-off): two rows of
 * the shorter length, O(n·max) time, and it gives up as soon as a whole row exceeds `max` or the
 * lengths alone differ by more than `max`.
 */
export function editDistanceWithin(a: ArrayLike<number> | string, b: ArrayLike<number> | string, max: number): number {
  const s = typeof a === "string" ? codePoints(a) : a;
  const t = typeof b === "string" ? codePoints(b) : b;
  const over = max + 1;
  if (max < 0) return over;
  // Rows run over the shorter sequence.
  const [x, y] = s.length >= t.length ? [s, t] : [t, s];
  const n = x.length;
  const m = y.length;
  if (n - m > max) return over;
  if (m === 0) return n;

  let prev = new Int32Array(m + 1);
  let cur = new Int32Array(m + 1);
  for (let j = 0; j <= m; j++) prev[j] = j <= max ? j : over;
  for (let i = 1; i <= n; i++) {
    const lo = Math.max(1, i - max);
    const hi = Math.min(m, i + max);
    // The cell left of the band: column 0 is i deletions, anything else is out of reach.
    cur[lo - 1] = lo === 1 ? (i <= max ? i : over) : over;
    let rowMin = cur[lo - 1]!;
    const xi = x[i - 1];
    for (let j = lo; j <= hi; j++) {
      let v = prev[j - 1]! + (xi === y[j - 1] ? 0 : 1);
      const del = prev[j]! + 1;
      if (del < v) v = del;
      const ins = cur[j - 1]! + 1;
      if (ins < v) v = ins;
      if (v > over) v = over;
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    // The cell right of the band is read by the next row as its `prev[j]`.
    if (hi < m) cur[hi + 1] = over;
    if (rowMin > max) return over;
    [prev, cur] = [cur, prev];
  }
  return Math.min(prev[m]!, over);
}

function codePoints(s: string): Int32Array {
  const out = new Int32Array(s.length);
  let n = 0;
  for (const ch of s) out[n++] = ch.codePointAt(0)!;
  return out.subarray(0, n);
}
