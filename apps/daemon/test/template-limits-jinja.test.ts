// Hostile Jinja chat templates (@huggingface/jinja): loops, huge ranges, and the built-ins that
// build a large value in one step must stop with one clear template error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Template } from "@huggingface/jinja";
import { compileTemplate, render, renderWithin } from "../src/runner/prompt.ts";
import { DEFAULT_LIMITS, RenderBudget, TemplateLimitError, type RenderLimits } from "../src/template/index.ts";

const conversation = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "one" },
  { role: "assistant", content: "two" },
  { role: "user", content: "three" },
];

/** Renders `src` as a Jinja template (the leading `bos_token` marks it as one) and returns the error message it fails with. */
function failure(src: string): string {
  const t = compileTemplate("{{ bos_token }}" + src);
  assert.equal(t.kind, "jinja");
  try {
    render(t, { messages: conversation });
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`rendered without an error: ${src.slice(0, 80)}`);
}

const STOPPED = /^template error: rendering stopped/;

/**
 * A template that loops without end stops at the step budget, or at the wall clock where steps are
 * slow: which comes first depends on the machine, so either is accepted here (the bounds are
 * tested one at a time further down).
 */
const LOOPS = /^template error: rendering stopped after (\d+ steps \(the template loops too much\)|\d+ seconds \(the template takes too long\))$/;

/** A namespace string `ns.s` of 2^k characters, built by doubling. */
const bigString = (k: number): string => `{% set ns = namespace(s='a', a=[]) %}{% for i in range(${k}) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}`;

test("the 113-byte triple loop stops after the step budget", () => {
  const src = "{% for a in range(999) %}{% for b in range(999) %}{% for c in range(999) %}{{ c }}{% endfor %}{% endfor %}{% endfor %}";
  assert.match(failure(src), LOOPS);
});

test("nested loops with empty bodies still count a step per iteration", () => {
  assert.match(failure("{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}"), LOOPS);
});

test("range() with a huge argument is refused before the list is built", () => {
  assert.match(failure("{{ range(10 ** 9) | length }}"), /^template error: rendering stopped: a list of 1000000000 items exceeds the limit of \d+/);
  assert.match(failure("{{ range(0, 10 ** 15, 2) | length }}"), /^template error: rendering stopped: a list of 500000000000000 items exceeds the limit of \d+/);
});

test("a string doubled in a namespace stops at the size budget", () => {
  assert.match(failure(bigString(40) + "{{ ns.s | length }}"), /^template error: rendering stopped: a value of \d+ characters exceeds the limit of \d+/);
});

test("a list doubled by concatenation stops at the item budget", () => {
  const src = "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = ns.a + ns.a %}{% endfor %}{{ ns.a | length }}";
  assert.match(failure(src), /^template error: rendering stopped: a list of \d+ items exceeds the limit of \d+/);
});

test("indent with a huge width is refused before the padding is built", () => {
  assert.match(failure("{{ 'a\\nb\\nc' | indent(200000000) }}"), STOPPED);
  assert.match(failure("{% filter indent(width=200000000) %}a\nb{% endfilter %}"), STOPPED);
});

test("tojson with a huge indent or separator is refused before it is built", () => {
  assert.match(failure("{{ range(1000) | tojson(indent=200000000) }}"), STOPPED);
  assert.match(failure(bigString(21) + "{{ range(1000) | tojson(separators=(ns.s, ': ')) }}"), STOPPED);
});

test("joining many copies of a large string is refused before it is built", () => {
  assert.match(failure(bigString(21) + "{{ range(10000) | join(ns.s) }}"), STOPPED);
  const copies = bigString(21) + "{% set ns.a = [ns.s] %}{% for i in range(12) %}{% set ns.a = ns.a + ns.a %}{% endfor %}";
  assert.match(failure(copies + "{{ ns.a | join }}"), STOPPED);
  assert.match(failure(copies + "{{ ns.a }}"), STOPPED, "printing the list");
  assert.match(failure(copies + "{{ ns.a ~ '' }}"), STOPPED, "concatenating the list");
  assert.match(failure(copies + "{{ ns.a | string }}"), STOPPED, "the string filter");
  assert.match(failure(copies + "{{ ns.a | tojson }}"), STOPPED, "the tojson filter");
});

test("a list that nests itself by reference cannot print exponentially much text", () => {
  let src = "{% set a0 = ['xxxxxxxxxxxxxxxx'] %}";
  for (let i = 1; i <= 40; i++) src += `{% set a${i} = [a${i - 1}, a${i - 1}] %}`;
  assert.match(failure(src + "{{ a40 }}"), STOPPED);
  assert.match(failure(src + "{{ a40 | tojson(indent=2) }}"), STOPPED);
});

test("replace cannot multiply a string past the size budget in one step", () => {
  assert.match(failure(bigString(20) + "{{ ns.s.replace('', ns.s) | length }}"), STOPPED);
  assert.match(failure(bigString(20) + "{{ (ns.s | replace('a', ns.s)) | length }}"), STOPPED);
});

test("split cannot make a list past the item budget in one step, but may split a large text into few pieces", () => {
  assert.match(failure(bigString(20) + "{{ ns.s.split('a') | length }}"), /^template error: rendering stopped: a list of 1048577 items exceeds the limit of \d+/);
  assert.match(failure(bigString(20) + "{% set ns.s = ns.s | replace('a', 'a ') %}{{ ns.s.split() | length }}"), /^template error: rendering stopped: a list of 1048576 items exceeds the limit of \d+/);
  const long = [{ role: "user", content: "x".repeat(1_000_000) + "</think>answer" }];
  assert.equal(render(compileTemplate("{{ messages[0].content.split('</think>')[-1] }}"), { messages: long }), "answer");
});

test("sorting many copies of a large string is work the budget counts", () => {
  const src = bigString(20) + "{% set ns.a = [ns.s] %}{% for i in range(16) %}{% set ns.a = ns.a + ns.a %}{% endfor %}{{ ns.a | sort | length }}";
  assert.match(failure(src), STOPPED);
});

test("searching a list of large strings over and over is work the budget counts", () => {
  const src = bigString(20) + "{% set ns.a = [ns.s] %}{% for i in range(10) %}{% set ns.a = ns.a + ns.a %}{% endfor %}{% set b = ns.s ~ '' %}{% for i in range(100000) %}{% if b in ns.a %}{% endif %}{% endfor %}";
  assert.match(failure(src), STOPPED);
});

test("runaway macro recursion stops at the depth bound", () => {
  assert.match(failure("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}"), /^template error: rendering stopped: exceeded maximum template depth \(100\)$/);
});

test("a namespace that contains itself cannot be printed", () => {
  assert.match(failure("{% set ns = namespace(x=1) %}{% set ns.self = ns %}{{ ns }}"), STOPPED);
});

// ---- each bound on its own, with limits small enough to reach quickly and a clock the test turns

/** Renders a Jinja template within `limits` (the rest default, no wall clock) and returns the limit error. */
function limitError(src: string, limits: Partial<RenderLimits>, now?: () => number): string {
  const budget = new RenderBudget({ ...DEFAULT_LIMITS, maxMillis: Infinity, ...limits }, now ? { now } : {});
  try {
    renderWithin(compileTemplate("{{ bos_token }}" + src), { messages: conversation }, budget);
  } catch (e) {
    assert.ok(e instanceof TemplateLimitError, String(e));
    return e.message;
  }
  assert.fail(`rendered without an error: ${src.slice(0, 80)}`);
}

test("the step budget counts evaluated nodes and loop iterations", () => {
  assert.equal(limitError("{% for i in range(99999) %}{{ i }}{% endfor %}", { maxSteps: 5000 }), "rendering stopped after 5000 steps (the template loops too much)");
  assert.equal(limitError("{% for i in range(99999) %}{% endfor %}", { maxSteps: 5000 }), "rendering stopped after 5000 steps (the template loops too much)");
});

test("the wall clock is looked at while steps are taken", () => {
  let t = 0;
  const now = (): number => (t += 1000);
  assert.equal(limitError("{% for i in range(99999) %}{% endfor %}", { maxMillis: 2000 }, now), "rendering stopped after 2 seconds (the template takes too long)");
});

test("the output bound counts text as a loop or block accumulates it", () => {
  assert.equal(limitError("{% for i in range(200) %}abcdefgh{% endfor %}", { maxOutput: 1000 }), "rendering stopped: output exceeds 1000 characters (the template writes too much text)");
  assert.equal(limitError("{% set ns = namespace(s='a') %}{% for i in range(9) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}{{ ns.s }}", { maxOutput: 1000 }), "rendering stopped: output exceeds 1000 characters (the template writes too much text)");
});

test("a string longer than the output bound is refused before it is built", () => {
  assert.equal(limitError("{% set ns = namespace(s='a') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", { maxOutput: 1000 }), "rendering stopped: a value of 1024 characters exceeds the limit of 1000");
});

test("the item bound applies to range() and to list concatenation", () => {
  assert.equal(limitError("{{ range(51) | length }}", { maxItems: 50 }), "rendering stopped: a list of 51 items exceeds the limit of 50");
  assert.equal(limitError("{{ (range(30) + range(30)) | length }}", { maxItems: 50 }), "rendering stopped: a list of 60 items exceeds the limit of 50");
});

test("the work bound counts the strings and lists built", () => {
  assert.equal(
    limitError("{% for i in range(1000) %}{% set x = 'abcdefghij' ~ i %}{% endfor %}", { maxWork: 5000 }),
    "rendering stopped: the template processed more than 5000 characters (it repeats too much work on large values)",
  );
});

test("the depth bound counts nested calls", () => {
  const src = "{% macro r(n) %}{% if n > 0 %}{{ r(n - 1) }}{% endif %}{{ n }}{% endmacro %}{{ r(3) }}";
  assert.equal(renderWithin(compileTemplate(src), { messages: conversation }, new RenderBudget({ ...DEFAULT_LIMITS, maxDepth: 4 })), "0123");
  assert.equal(limitError(src, { maxDepth: 3 }), "rendering stopped: exceeded maximum template depth (3)");
});

test("within its limits the bounded renderer renders what the package renders", () => {
  const src = `{{ bos_token }}{% macro show(x, sep=', ') %}{{ x | join(sep) }}{% endmacro %}{% set ns = namespace(n=0, s='') %}
{%- for m in messages if m.role != 'system' %}{% set ns.n = ns.n + 1 %}[{{ loop.index }}/{{ loop.length }} {{ m.role | upper }}] {{ m.content | indent(2, first=true) }}
{% endfor -%}
{{ show(range(2, 12, 3)) }}|{{ show(['b', 'A', 'c'] | sort, sep='-') }}|{{ range(5, 0, -2) | list }}|{{ 'a-b-a'.replace('a', 'xy') }}|{{ 'a-b-a' | replace('a', 'z', 1) }}
{{ tools | tojson(indent=2) }}|{{ tools | tojson(separators=(',', ':')) }}|{{ [1, [2, 'x'], {'k': none}] }}|{{ ['p', 'q'] ~ '!' }}|{{ strftime_now('%Y') | length }}|{{ ns.n }}
{%- filter upper %} done {% endfilter %}{% if 'user' in messages | map(attribute='role') | list %} yes{% endif %}`;
  const tools = [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { a: { type: "string" } } } } }];
  const messages = [...conversation, { role: "assistant", content: "line one\nline two" }];
  const expected = new Template(src).render({ messages, tools, add_generation_prompt: true, bos_token: "<s>", eos_token: "</s>" });
  const t = compileTemplate(src);
  assert.equal(t.kind, "jinja");
  assert.equal(render(t, { messages, tools, bosToken: "<s>", eosToken: "</s>" }), expected);
  assert.match(expected, /\[4\/4 ASSISTANT\]   line one\n  line two/);
  assert.match(expected, /2, 5, 8, 11\|A-b-c\|\[5, 3, 1\]\|xy-b-xy\|z-b-a/);
});
