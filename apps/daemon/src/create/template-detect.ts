// Template autodetection at create (docs/daemon.md, "Create"): a GGUF's
// `tokenizer.chat_template` (Jinja) is compared with known Jinja chat templates, and the nearest one,
// when fewer than 100 edits away, names the family whose Go template and stop list the model gets.
// The files live in ./templates/ (PROVENANCE.md there): `index.json`, the chat templates Ollama
// recognises with the family it gives each; `<family>.gotmpl` and `<family>.json` for every family;
// and `<family>*.jinja`, further real templates of a family.

import { readdirSync, readFileSync } from "node:fs";

/** A chat template is accepted when its edit distance to a reference is below this. */
export const MAX_TEMPLATE_DISTANCE = 100;

export interface DetectedTemplate {
  name: string;
  /** Our Go template for the family (Ollama TEMPLATE syntax). */
  template: string;
  /** Default parameters that come with it. */
  parameters?: { stop: string[] };
}

interface Reference {
  family: string;
  text: Int32Array;
}

interface Catalogue {
  /** index.json, in its order: what Ollama recognises, and the order it breaks ties in. */
  index: Reference[];
  /** Our own references, consulted only when no index entry is near enough. */
  extra: Reference[];
  families: Map<string, { template: string; parameters?: { stop: string[] } }>;
}

let catalogue: Catalogue | undefined;

function loadCatalogue(): Catalogue {
  if (catalogue) return catalogue;
  const dir = new URL("./templates/", import.meta.url);
  const read = (file: string): string => readFileSync(new URL(file, dir), "utf8");
  const index = parseIndex(read("index.json"));
  // Sorted, so that a tie between two of our references goes the same way on every file system.
  const jinja = readdirSync(dir).filter((f) => f.endsWith(".jinja")).sort();
  const extra = jinja.map((file) => ({ family: file.split(".")[0]!, text: codePoints(read(file)) }));
  const families = new Map<string, { template: string; parameters?: { stop: string[] } }>();
  for (const { family } of [...index, ...extra]) {
    if (families.has(family)) continue;
    const entry: { template: string; parameters?: { stop: string[] } } = { template: read(`${family}.gotmpl`) };
    const params = parseParams(read(`${family}.json`), `${family}.json`);
    if (params) entry.parameters = params;
    families.set(family, entry);
  }
  catalogue = { index, extra, families };
  return catalogue;
}

function parseIndex(text: string): Reference[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value)) throw new Error("templates/index.json: expected an array");
  return value.map((entry: unknown, i) => {
    const { name, template } = (entry ?? {}) as Record<string, unknown>;
    if (typeof name !== "string" || typeof template !== "string") throw new Error(`templates/index.json: entry ${i} needs a string "name" and "template"`);
    return { family: name, text: codePoints(template) };
  });
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
 * The family whose known chat template is nearest to `chatTemplate`, when it is fewer than
 * MAX_TEMPLATE_DISTANCE edits away; undefined otherwise.
 */
export function detectTemplate(chatTemplate: string): DetectedTemplate | undefined {
  const nearest = nearestTemplate(chatTemplate);
  if (!nearest) return undefined;
  const family = loadCatalogue().families.get(nearest.name)!;
  const out: DetectedTemplate = { name: nearest.name, template: family.template };
  if (family.parameters) out.parameters = { stop: [...family.parameters.stop] };
  return out;
}

/**
 * The nearest family and its distance, or undefined when none is within the cut-off. The index is
 * searched first, on its own, so that every template it recognises gets the family Ollama gives it
 * (the nearest entry, the earlier one on a tie) even where one of our references is nearer; our
 * references only extend recognition to templates the index leaves out.
 */
export function nearestTemplate(chatTemplate: string): { name: string; distance: number } | undefined {
  if (chatTemplate === "") return undefined;
  const input = codePoints(chatTemplate);
  const { index, extra } = loadCatalogue();
  return nearestAmong(input, index) ?? nearestAmong(input, extra);
}

/** The reference nearest to `input` within the cut-off, the earliest in `refs` on a tie. */
function nearestAmong(input: Int32Array, refs: readonly Reference[]): { name: string; distance: number } | undefined {
  // Two texts are at least their difference in length apart, so references are tried from the
  // closest length out and the search stops at the first one too far off to beat the best so far.
  const gap = (r: Reference): number => Math.abs(r.text.length - input.length);
  const order = refs.map((_, i) => i).sort((a, b) => gap(refs[a]!) - gap(refs[b]!) || a - b);
  let best: { at: number; distance: number } | undefined;
  for (const at of order) {
    const ref = refs[at]!;
    // An equal distance still wins from an earlier position; otherwise only a smaller one does.
    const limit = best ? best.distance - (at < best.at ? 0 : 1) : MAX_TEMPLATE_DISTANCE - 1;
    if (gap(ref) > (best ? best.distance : MAX_TEMPLATE_DISTANCE - 1)) break;
    const d = editDistanceWithin(input, ref.text, limit);
    if (d <= limit) best = { at, distance: d };
  }
  return best && { name: refs[best.at]!.family, distance: best.distance };
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
