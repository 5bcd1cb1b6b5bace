// Property-based tests of the Modelfile parser on hostile input: whatever the text or bytes, it
// returns commands or throws ModelfileError (PARAMETER values: ParameterError); and rendering any
// representable model then parsing it gives the values back. That its work is linear in the input
// is modelfile-linear-work.test.ts.
// FUZZ_SEED=<n> replays a failure (fast-check prints the seed and path it failed with);
// FUZZ_RUNS=<n> changes the number of cases.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";

import {
  ModelfileError,
  ParameterError,
  formatParams,
  isGoPrint,
  parametersFromCommands,
  parseModelfile,
  renderModelfile,
  splitMessageArgs,
  trimGoSpace,
  type ModelfileCommand,
} from "@corral/shared/modelfile/index";

function runs(n: number): fc.Parameters<unknown> {
  const seed = process.env["FUZZ_SEED"];
  return { numRuns: Number(process.env["FUZZ_RUNS"] ?? n), ...(seed ? { seed: Number(seed) } : {}) };
}

/** Parses and reports what happened; anything but a ModelfileError is a failure of the property. */
function parseOutcome(input: string | Uint8Array): ModelfileCommand[] | ModelfileError {
  try {
    return parseModelfile(input);
  } catch (e) {
    if (e instanceof ModelfileError) return e;
    throw e;
  }
}

// Pieces that drive the parser's state machine into every state: keywords, roles, quotes of both
// kinds, every kind of line break and space, comments, non-printable and non-BMP runes.
const piece = fc.constantFrom(
  "FROM", "from", "SYSTEM", "TEMPLATE", "PARAMETER", "MESSAGE", "LICENSE", "ADAPTER", "DRAFT", "REQUIRES",
  "user", "assistant", "system", "tool", "stop", "num_ctx", "temperature", "4096", "0.7", "x",
  " ", "  ", "\t", "\n", "\r\n", "\r", "\v", "\f", "\u0085", "\u00a0", "\u2028", "\u3000",
  '"', '""', '"""', "#", ":", ": ", "_", "-", "é", "😀", "\u0000", "\ufeff", "\ud800", "\udc00", "\u202e",
);
const structured = fc.array(piece, { maxLength: 60 }).map((p) => p.join(""));
const anyText = fc.oneof(structured, fc.string({ unit: "binary", maxLength: 200 }), fc.string({ unit: "grapheme-ascii", maxLength: 200 }));

describe("parseModelfile on hostile input", () => {
  it("throws nothing but ModelfileError for any text", () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const out = parseOutcome(text);
        if (out instanceof ModelfileError) {
          assert.ok(out.reason.length > 0);
          return;
        }
        assert.ok(out.some((c) => c.name === "model"), "a parsed Modelfile has a FROM line");
        for (const c of out) {
          assert.equal(typeof c.args, "string");
          assert.ok(Number.isSafeInteger(c.line) && c.line >= 1);
        }
      }),
      runs(3000),
    );
  });

  it("throws nothing but ModelfileError for any bytes, with or without a byte-order mark", () => {
    const bom = fc.constantFrom([], [0xef, 0xbb, 0xbf], [0xfe, 0xff], [0xff, 0xfe], [0xff], [0xfe]);
    const textBytes = structured.map((s) => [...new TextEncoder().encode(s)]);
    const bytes = fc.tuple(bom, fc.oneof(textBytes, fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 200 }))).map(([b, rest]) => Uint8Array.from([...b, ...rest]));
    fc.assert(
      fc.property(bytes, (b) => {
        parseOutcome(b);
      }),
      runs(2000),
    );
  });

  it("turns PARAMETER values into typed options or a ParameterError", () => {
    const name = fc.constantFrom("num_ctx", "seed", "temperature", "top_p", "use_mmap", "stop", "mirostat", "numa", "constructor", "__proto__", "toString");
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.double().map(String),
      fc.bigInt().map(String),
      fc.constantFrom("1e999999999", "-1e-999999999", "0x1p-149", "0x.p1", "9".repeat(400), `1${"0".repeat(300)}e-300`, "NaN", "Inf", "+", "-", ".", "e5"),
    );
    fc.assert(
      fc.property(name, value, (n, v) => {
        try {
          const out = formatParams({ [n]: [v] });
          for (const x of Object.values(out)) {
            if (typeof x === "number") assert.ok(Number.isFinite(x), `${n} ${v} gave ${x}`);
          }
        } catch (e) {
          if (!(e instanceof ParameterError)) throw e;
        }
      }),
      runs(3000),
    );
  });

  it("builds parameters from any parsed Modelfile or throws ParameterError", () => {
    const params = fc.array(fc.tuple(fc.constantFrom("num_ctx", "temperature", "stop", "use_mmap", "mirostat", "bogus"), anyText), { maxLength: 6 });
    fc.assert(
      fc.property(params, (ps) => {
        const text = `FROM m\n${ps.map(([k, v]) => `PARAMETER ${k} ${v}`).join("\n")}\n`;
        const out = parseOutcome(text);
        if (out instanceof ModelfileError) return;
        try {
          parametersFromCommands(out);
        } catch (e) {
          if (!(e instanceof ParameterError)) throw e;
        }
      }),
      runs(2000),
    );
  });
});

describe("render → parse round trip for arbitrary values", () => {
  // The parser keeps printable runes and, inside values, spaces and line breaks; nothing else can
  // be written into a Modelfile.
  const keepable = (ch: string): boolean => isGoPrint(ch) || ch === "\t" || ch === "\n" || ch === "\r";
  const valuePiece = fc.oneof(
    fc.constantFrom(" ", "\t", "\n", "\r\n", "\r", '"', '"""', "#", "FROM x", "MESSAGE user hi", "{{ .Prompt }}", "é", "😀", ":"),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 4 }),
  );
  const value = fc.array(valuePiece, { maxLength: 12 }).map((p) => [...p.join("")].filter(keepable).join(""));
  // A value with `"` in it and a line whose text so far ends in `"""` has no Modelfile spelling.
  const representable = (v: string): boolean =>
    !(v.includes('"') && [...v].some((ch, i, all) => (ch === "\n" || ch === "\r") && all.slice(0, i).join("").replace(/[\t\n\r ]+$/, "").endsWith('"""')));
  const repValue = value.filter(representable);
  // FROM, ADAPTER and similar single-word commands drop surrounding space even when quoted; only
  // their inner text is compared for those.
  const word = repValue.map((v) => trimGoSpace(v)).filter((v) => v !== "" && representable(v));

  it("gives back FROM, ADAPTER, TEMPLATE, SYSTEM, LICENSE, MESSAGE and stop values", () => {
    const role = fc.constantFrom("system", "user", "assistant");
    fc.assert(
      fc.property(
        fc.record({
          from: fc.array(word, { minLength: 1, maxLength: 2 }),
          adapters: fc.array(word, { maxLength: 2 }),
          template: repValue,
          system: repValue.filter((v) => v !== ""),
          licenses: fc.array(repValue, { maxLength: 3 }),
          messages: fc.array(fc.tuple(role, repValue).map(([r, content]) => ({ role: r, content })), { maxLength: 3 }),
          stop: fc.array(repValue, { maxLength: 3 }),
        }),
        (m) => {
          const text = renderModelfile({ ...m, parameters: m.stop.length ? { stop: m.stop } : {} });
          const cmds = parseModelfile(text);
          const of = (name: string): string[] => cmds.filter((c) => c.name === name).map((c) => c.args);
          assert.deepEqual(of("model"), m.from);
          assert.deepEqual(of("adapter"), m.adapters);
          assert.deepEqual(of("template"), [m.template]);
          assert.deepEqual(of("system"), [m.system]);
          assert.deepEqual(of("license"), m.licenses);
          assert.deepEqual(of("stop"), m.stop);
          assert.deepEqual(cmds.filter((c) => c.name === "message").map((c) => splitMessageArgs(c.args)), m.messages);
        },
      ),
      runs(1500),
    );
  });

  it("gives back numeric and boolean parameters", () => {
    fc.assert(
      fc.property(
        fc.record({
          num_ctx: fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
          seed: fc.maxSafeInteger(),
          temperature: fc.float({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
          top_p: fc.float({ noNaN: true, noDefaultInfinity: true, min: 0, max: 1 }),
          use_mmap: fc.boolean(),
        }),
        (p) => {
          const { parameters } = parametersFromCommands(parseModelfile(renderModelfile({ from: ["m"], parameters: p })));
          assert.equal(parameters["num_ctx"], p.num_ctx);
          assert.equal(parameters["seed"], p.seed);
          assert.equal(parameters["use_mmap"], p.use_mmap);
          // Floats are float32 options: what comes back is the float32 read as its shortest decimal.
          assert.equal(Math.fround(parameters["temperature"] as number), p.temperature);
          assert.equal(Math.fround(parameters["top_p"] as number), p.top_p);
        },
      ),
      runs(1500),
    );
  });
});
