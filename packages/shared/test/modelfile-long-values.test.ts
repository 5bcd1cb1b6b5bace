// Modelfile quoting of long hostile values (a registry shows pushed licences and templates as a
// Modelfile on every view of a tag page): trimming and the `"""` check walk the value once, and
// give exactly what their definitions (regular expressions and the per-line check, quadratic in
// long runs of spaces or lines) give.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { trimGoSpace } from "@corral/shared/modelfile/index";
import { isGoSpace } from "@corral/shared/modelfile/gotext";
import { quoteModelfileValue } from "@corral/shared/modelfile/render";
import { parseModelfile } from "@corral/shared/modelfile/parser";

const GO_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
const referenceTrim = (s: string): string => s.replace(new RegExp(`^[${GO_SPACE}]+`), "").replace(new RegExp(`[${GO_SPACE}]+$`), "");
/** The former per-line check: at no line break may the text so far, trimmed, end in a second `"""`. */
const referenceTripleQuoteHolds = (s: string): boolean =>
  ![...s].some((ch, i, all) => {
    if (ch !== "\n" && ch !== "\r") return false;
    const soFar = referenceTrimEnd('"""' + all.slice(0, i).join(""));
    return soFar.length >= 6 && soFar.endsWith('"""');
  });
const referenceTrimEnd = (s: string): string => s.replace(new RegExp(`[${GO_SPACE}]+$`), "");
/** quoteModelfileValue spelled with the definitions above. */
function referenceQuote(s: string): string {
  const ollamaQuotes = s.includes("\n") || s.startsWith(" ") || s.endsWith(" ");
  const bareIsLossy = referenceTrim(s) !== s || s.startsWith('"') || s.includes("\r");
  if (!ollamaQuotes && !bareIsLossy) return s;
  if (!s.includes('"')) return `"${s}"`;
  if (!referenceTripleQuoteHolds(s) && !ollamaQuotes) return s;
  return `"""${s}"""`;
}

/** A deterministic pseudo-random generator, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
}

describe("Go space trimming", () => {
  it("knows every Go space among all UTF-16 code units", () => {
    const re = new RegExp(`^[${GO_SPACE}]$`);
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c);
      assert.equal(isGoSpace(ch), re.test(ch), `U+${c.toString(16).padStart(4, "0")}`);
    }
  });

  it("matches the regular-expression definition on mixed text", () => {
    const pieces = [" ", "\t", "\n", "\r", "\v", "\f", "\u0085", "\u00a0", "\u1680", "\u2003", "\u200b", "\u2028", "\u3000", "\ufeff", "a", "é", "😀", '"', "x y"];
    const next = rng(7);
    for (let n = 0; n < 3000; n++) {
      const s = Array.from({ length: Math.floor(next() * 12) }, () => pieces[Math.floor(next() * pieces.length)]).join("");
      assert.equal(trimGoSpace(s), referenceTrim(s), JSON.stringify(s));
    }
  });
});

describe("quoting", () => {
  it("gives what the per-line definition gives", () => {
    const pieces = ["a", " ", "\t", "\n", "\r\n", "\r", '"', '""', '"""', "\u2003"];
    const next = rng(11);
    for (let n = 0; n < 5000; n++) {
      const s = Array.from({ length: 1 + Math.floor(next() * 10) }, () => pieces[Math.floor(next() * pieces.length)]).join("");
      assert.equal(quoteModelfileValue(s), referenceQuote(s), JSON.stringify(s));
    }
    // Values with a carriage return and no newline are where the check decides.
    assert.equal(quoteModelfileValue('a"""\rb'), 'a"""\rb', "a line ending in a second triple quote cannot be triple-quoted");
    assert.equal(quoteModelfileValue('a""\rb'), '"""a""\rb"""');
    assert.equal(quoteModelfileValue('"""  \t\rb'), '"""  \t\rb', "trailing spaces before the break are trimmed first");
  });

  it("long values full of line breaks, spaces and quotes are quoted and read back", () => {
    const n = 256 * 1024;
    const cases = [
      "\n".repeat(n) + '"', // every line break re-checks all the text before it
      "x" + " ".repeat(n) + "x\n", // one long inner run of spaces
      ("a \t".repeat(1000) + '"\n').repeat(n / 3000),
    ];
    for (const value of cases) {
      const quoted = quoteModelfileValue(value);
      const commands = parseModelfile(`FROM x\nLICENSE ${quoted}\n`);
      assert.equal(commands.find((c) => c.name === "license")?.args, value, `${value.length} characters`);
    }
  });
});
