// Hostile Go TEMPLATEs: each one would hold the daemon's main thread (or its memory) without
// bound; rendering must stop with one clear template error instead.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compileTemplate, render, renderWithin } from "../src/runner/prompt.ts";
import { DEFAULT_LIMITS, RenderBudget, TemplateLimitError, type RenderLimits } from "../src/template/index.ts";

const conversation = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "one" },
  { role: "assistant", content: "two" },
  { role: "user", content: "three" },
];

/**
 * A template that loops without end stops at the step budget, or at the wall clock where steps are
 * slow: which comes first depends on the machine, so either is accepted here (the bounds are
 * tested one at a time further down).
 */
const LOOPS = /^template error: rendering stopped after (\d+ steps \(the template loops too much\)|\d+ seconds \(the template takes too long\))$/;

/** Renders `src` as a model TEMPLATE and returns the error message it fails with. */
function failure(src: string, messages = conversation): string {
  try {
    render(compileTemplate(src), { messages });
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`rendered without an error: ${src.slice(0, 80)}`);
}

/** The doubling attack: t{n} calls t{n-1} twice, so t26 would write 2^26 characters in 2^27 calls. */
function doubling(levels: number): string {
  let src = '{{define "t0"}}x{{end}}';
  for (let i = 1; i <= levels; i++) src += `{{define "t${i}"}}{{template "t${i - 1}" .}}{{template "t${i - 1}" .}}{{end}}`;
  return src + `{{template "t${levels}" .}}{{ .Prompt }}`;
}

test("nested {{template}} calls that double at each level stop after the step budget", () => {
  assert.match(failure(doubling(26)), LOOPS);
});

test("nested ranges over a number stop after the step budget, even with an empty body", () => {
  assert.match(failure("{{range 1000}}{{range 1000}}{{range 1000}}{{end}}{{end}}{{end}}{{ .Prompt }}"), LOOPS);
});

test("a legacy template (executed once per turn) shares one budget across the turns", () => {
  // 60 turns × 250,000 iterations: every single execution fits the budget, the whole render does not.
  const messages = [];
  for (let i = 0; i < 60; i++) messages.push({ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i}` });
  messages.push({ role: "user", content: "last" });
  assert.match(failure("{{range 500}}{{range 500}}{{end}}{{end}}[INST]{{ .Prompt }}[/INST]{{ .Response }}", messages), LOOPS);
});

test("output that grows past the size budget stops", () => {
  assert.match(failure("{{range 120000}}0123456789012345678901234567890123456789{{end}}{{ .Prompt }}"), /^template error: rendering stopped: output exceeds \d+ characters/);
});

test("a string doubled in a variable stops at the size budget", () => {
  assert.match(failure('{{ $x := "ab" }}{{ range 40 }}{{ $x = print $x $x }}{{ end }}{{ len $x }}{{ .Prompt }}'), /^template error: rendering stopped: a value of \d+ characters exceeds the limit of \d+/);
});

test("printf with a width near Go's own limit cannot build a string past the size budget", () => {
  assert.match(failure('{{ range 1000 }}{{ $x := printf "%9999999d" 1 }}{{ end }}{{ .Prompt }}'), /^template error: rendering stopped: a value of \d+ characters exceeds the limit of \d+/);
});

test("runaway {{template}} recursion stops at the depth bound", () => {
  assert.match(failure('{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}{{ .Prompt }}'), /^template error: rendering stopped: exceeded maximum template depth \(100\)$/);
});

test("comparing a large string over and over is work the budget counts", () => {
  // 400 KiB strings compared a million times would scan 400 GB; the budget stops it early.
  const big = "a".repeat(400 * 1024);
  const src = "{{ $a := slice .Prompt 0 }}{{ range 1000000 }}{{ if lt $a $.Prompt }}{{ end }}{{ end }}";
  try {
    render(compileTemplate(src), { messages: [{ role: "user", content: big }] });
    assert.fail("rendered without an error");
  } catch (e) {
    assert.match((e as Error).message, /^template error: rendering stopped/);
  }
});

// ---- each bound on its own, with limits small enough to reach quickly and a clock the test turns

/** Renders a Go TEMPLATE within `limits` (the rest default, no wall clock) and returns the limit error. */
function limitError(src: string, limits: Partial<RenderLimits>, opts: { now?: () => number; messages?: typeof conversation } = {}): string {
  const budget = new RenderBudget({ ...DEFAULT_LIMITS, maxMillis: Infinity, ...limits }, opts.now ? { now: opts.now } : {});
  try {
    renderWithin(compileTemplate(src), { messages: opts.messages ?? conversation }, budget);
  } catch (e) {
    assert.ok(e instanceof TemplateLimitError, String(e));
    return e.message;
  }
  assert.fail(`rendered without an error: ${src.slice(0, 80)}`);
}

test("the step budget counts walked nodes and calls", () => {
  assert.equal(limitError("{{ range 1000000 }}{{ end }}{{ .Prompt }}", { maxSteps: 5000 }), "rendering stopped after 5000 steps (the template loops too much)");
  assert.equal(limitError("{{ range 1000000 }}{{ len $.Prompt }}{{ end }}{{ .Prompt }}", { maxSteps: 5000 }), "rendering stopped after 5000 steps (the template loops too much)");
});

test("the wall clock is looked at while steps are taken", () => {
  let t = 0;
  const now = (): number => (t += 1000);
  assert.equal(limitError("{{ range 1000000 }}{{ end }}{{ .Prompt }}", { maxMillis: 2000 }, { now }), "rendering stopped after 2 seconds (the template takes too long)");
});

test("the output bound counts every character written", () => {
  assert.equal(limitError("{{ range 100 }}0123456789ab{{ end }}{{ .Prompt }}", { maxOutput: 1000 }), "rendering stopped: output exceeds 1000 characters (the template writes too much text)");
});

test("a function result longer than the output bound is refused", () => {
  assert.equal(limitError('{{ $x := printf "%2000d" 1 }}{{ .Prompt }}', { maxOutput: 1000 }), "rendering stopped: a value of 2000 characters exceeds the limit of 1000");
});

test("the work bound counts the strings functions take and return", () => {
  const long = [{ role: "user", content: "x".repeat(500) }];
  assert.equal(
    limitError('{{ range 100 }}{{ if eq $.Prompt "x" }}{{ end }}{{ end }}{{ .Prompt }}', { maxWork: 10_000 }, { messages: long }),
    "rendering stopped: the template processed more than 10000 characters (it repeats too much work on large values)",
  );
});

test("the depth bound counts nested {{template}} calls", () => {
  const src = '{{ define "a" }}{{ template "b" . }}{{ end }}{{ define "b" }}{{ template "c" . }}{{ end }}{{ define "c" }}{{ .Prompt }}{{ end }}{{ template "a" . }}';
  assert.equal(renderWithin(compileTemplate(src), { messages: conversation }, new RenderBudget({ ...DEFAULT_LIMITS, maxDepth: 3 })), "onetwothree");
  assert.equal(limitError(src, { maxDepth: 2 }), "rendering stopped: exceeded maximum template depth (2)");
});

test("printf widths and precisions follow Go's limit of a million", () => {
  const out = (src: string): string => render(compileTemplate(src + "{{ .Prompt }}"), { messages: [{ role: "user", content: "" }] });
  assert.equal(out('{{ printf "%99999999d" 1 }}'), "%!(NOVERB)%!(EXTRA int=1)");
  assert.equal(out('{{ printf "%.99999999d" 1 }}'), "%!(NOVERB)%!(EXTRA int=1)");
  assert.equal(out('{{ printf "%*d" 10000000 1 }}'), "%!(BADWIDTH)1");
  assert.equal(out('{{ printf "%*d|%*d" "x" 1 -3 2 }}'), "%!(BADWIDTH)1|2  ");
  assert.equal(out('{{ printf "%.*d|%.*d" -1 5 3 7 }}'), "%!(BADPREC)5|007");
  assert.equal(out('{{ printf "%*d|%-5d|%05d" 4 1 2 3 }}'), "   1|2    |00003");
});
