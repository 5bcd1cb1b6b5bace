// Ollama's borderless tables (`list`, `ps`, the sections of `show`; docs/daemon.md, "CLI"):
// left-aligned columns padded to the widest cell and separated by four spaces. Like the
// table writer Ollama uses, a cell wider than the column limit (30, or 100 in the free-text sections
// of `show`) is word-wrapped onto more lines, breaking where the lines come out most even.
// Trailing padding is dropped so that output and tests carry no invisible spaces.

import stringWidth from "string-width";

const GAP = "    ";
const DEFAULT_WRAP = 30;
const TEXT_SECTION_WRAP = 100;
const TEXT_SECTIONS = new Set(["Template", "System", "License", "Signature"]);

/** `NAME    ID    SIZE …` followed by one line per row; every line ends with "\n". */
export function renderTable(headers: string[], rows: string[][]): string {
  return layout([headers, ...rows], DEFAULT_WRAP, "");
}

/**
 * One section of `ollama show`: two spaces and the title, the rows indented by four spaces, then a
 * blank line. Sections are meant to be concatenated.
 */
export function renderSection(title: string, rows: string[][]): string {
  const wrap = TEXT_SECTIONS.has(title) ? TEXT_SECTION_WRAP : DEFAULT_WRAP;
  return `  ${title}\n${layout(rows, wrap, GAP)}\n`;
}

function layout(rows: string[][], wrapAt: number, indent: string): string {
  const columns = rows.reduce((n, r) => Math.max(n, r.length), 0);
  if (columns === 0) return "";
  // Each cell becomes the lines it wraps to.
  const cells = rows.map((r) => Array.from({ length: columns }, (_, c) => wrapCell(r[c] ?? "", wrapAt)));
  const widths = Array.from({ length: columns }, (_, c) =>
    cells.reduce((w, row) => Math.max(w, ...row[c]!.map(displayWidth)), 0),
  );
  let out = "";
  for (const row of cells) {
    const height = row.reduce((h, lines) => Math.max(h, lines.length), 1);
    for (let i = 0; i < height; i++) {
      let line = indent;
      for (let c = 0; c < columns; c++) {
        const text = row[c]![i] ?? "";
        line += c === columns - 1 ? text : text + " ".repeat(widths[c]! - displayWidth(text)) + GAP;
      }
      out += line.trimEnd() + "\n";
    }
  }
  return out;
}

/** The lines of one cell: each of its own lines, word-wrapped when wider than the limit. */
function wrapCell(text: string, limit: number): string[] {
  const out: string[] = [];
  for (const para of text.split("\n")) {
    if (displayWidth(para) <= limit) out.push(para);
    else out.push(...wrapEvenly(para.split(" "), limit));
  }
  return out;
}

/** Above any achievable raggedness, so that a line over the limit is chosen only when unavoidable. */
const OVERFLOW_PENALTY = 100_000;

/**
 * Minimum-raggedness word wrap: choose the breaks that minimise the sum over all lines but the last
 * of (limit − line width)², with a fixed penalty for a line over the limit. A single word wider than
 * the limit raises the limit to its width, as Ollama's table writer does.
 */
export function wrapEvenly(words: string[], limit: number): string[] {
  const n = words.length;
  if (n === 0) return [""];
  const w = words.map(displayWidth);
  const lim = Math.max(limit, ...w);
  // prefix[i] = total width of words[0..i) plus one space after each.
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i]! + w[i]! + 1;
  const lineWidth = (i: number, j: number): number => prefix[j + 1]! - prefix[i]! - 1; // words i..j

  const cost = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  const next = new Int32Array(n);
  for (let i = n - 1; i >= 0; i--) {
    if (lineWidth(i, n - 1) <= lim) {
      cost[i] = 0;
      next[i] = n;
      continue;
    }
    for (let j = i + 1; j < n; j++) {
      const width = lineWidth(i, j - 1);
      const slack = lim - width;
      const c = slack * slack + cost[j]! + (width > lim ? OVERFLOW_PENALTY : 0);
      if (c < cost[i]!) {
        cost[i] = c;
        next[i] = j;
      }
    }
  }
  const lines: string[] = [];
  for (let i = 0; i < n; i = next[i]!) lines.push(words.slice(i, next[i]!).join(" "));
  return lines;
}

/** Terminal columns of a string: wide characters and emoji take two, combining marks and joiners none. */
export function displayWidth(s: string): number {
  return stringWidth(s);
}
