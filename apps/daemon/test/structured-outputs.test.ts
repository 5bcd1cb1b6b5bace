// Structured outputs: `format` as a JSON schema is enforced with a grammar of our own making, as
// llama.cpp's converter enforces it for Ollama (anyOf, integer bounds, patterns, lengths, formats),
// and what cannot be enforced is a 400 naming the keyword, on the native and the OpenAI routes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createModelFrom, startDaemon, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { integerRange, jsonSchemaGrammar } from "../src/runner/json-schema-grammar.ts";

let daemon: Daemon;

before(async () => {
  daemon = await startDaemon();
  await createModelFrom(daemon, { model: "story", path: fixtures.stories260K, extra: { template: "{{ .Prompt }}", parameters: { temperature: 0, num_predict: 96 } } });
});

after(async () => {
  await daemon?.stop();
});

/** The GBNF of an integer range read as a regular expression (it uses only literals, classes, groups and counts). */
function rangeRegex(lo: number | undefined, hi: number | undefined): RegExp {
  return new RegExp(`^(?:${integerRange(lo, hi).replace(/"([^"]*)"/g, "$1").replace(/ /g, "")})$`);
}

test("integer ranges accept exactly the integers within them, written without leading zeros or exponents", () => {
  const cases: Array<[number | undefined, number | undefined]> = [[5, 9], [0, 100], [-15, 7], [-300, -12], [37, 4512], [1, undefined], [undefined, -3], [99, 100], [0, 0], [-1, 1], [120, 999]];
  for (const [lo, hi] of cases) {
    const re = rangeRegex(lo, hi);
    for (let n = -5000; n <= 5000; n++) {
      const want = (lo === undefined || n >= lo) && (hi === undefined || n <= hi);
      assert.equal(re.test(String(n)), want, `${n} in [${lo}, ${hi}]: ${re}`);
    }
    for (const bad of ["007", "-0", "1e3", "5.0", "+5", ""]) assert.ok(!re.test(bad), `${bad} in [${lo}, ${hi}]`);
  }
});

async function generate(format: unknown, prompt = "Once upon a time"): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${daemon.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "story", prompt, format, stream: false }) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

test("anyOf, integer bounds, patterns and lengths are enforced on what the model writes", async () => {
  // The schemas Pydantic and Zod write for Optional/Union fields use anyOf.
  const schema = {
    type: "object",
    properties: {
      name: { type: "string", pattern: "^[a-c]{3}-[0-9]{2}$" },
      age: { type: "integer", minimum: 5, maximum: 9 },
      nick: { anyOf: [{ type: "string", minLength: 2, maxLength: 4 }, { type: "null" }] },
      pet: { anyOf: [{ type: "object", properties: { legs: { type: "integer", minimum: 1, maximum: 4 } }, required: ["legs"] }, { type: "integer", minimum: 10, maximum: 12 }] },
      when: { type: "string", format: "date" },
    },
    required: ["name", "age", "nick", "pet", "when"],
  };
  const r = await generate(schema);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const v = JSON.parse(r.body["response"] as string) as Record<string, unknown>;
  assert.match(v["name"] as string, /^[a-c]{3}-[0-9]{2}$/);
  assert.ok(Number.isInteger(v["age"]) && (v["age"] as number) >= 5 && (v["age"] as number) <= 9, JSON.stringify(v));
  assert.ok(v["nick"] === null || ((v["nick"] as string).length >= 2 && (v["nick"] as string).length <= 4), JSON.stringify(v));
  const pet = v["pet"];
  assert.ok(
    (typeof pet === "number" && pet >= 10 && pet <= 12) || (typeof pet === "object" && pet !== null && [1, 2, 3, 4].includes((pet as { legs: number }).legs)),
    JSON.stringify(v),
  );
  assert.match(v["when"] as string, /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/);
  // An integer is written as one, never in exponent form.
  const n = await generate({ type: "object", properties: { n: { type: "integer" } }, required: ["n"] });
  assert.match(n.body["response"] as string, /^\{\s*"n"\s*:\s*-?(0|[1-9][0-9]{0,15})\s*\}\s*$/);
});

test("a union whose only non-null branch is forced is not answered with null", async () => {
  const r = await generate({ anyOf: [{ type: "object", properties: { x: { type: "integer", minimum: 1, maximum: 3 } }, required: ["x"] }, { type: "integer", minimum: 5, maximum: 9 }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const v = JSON.parse(r.body["response"] as string) as unknown;
  assert.ok(v !== null && (typeof v === "number" ? v >= 5 && v <= 9 : [1, 2, 3].includes((v as { x: number }).x)), JSON.stringify(v));
});

test("local $ref, $defs, enum, const, arrays with counts and allOf of objects", async () => {
  const schema = {
    $defs: { color: { enum: ["red", "green"] }, tag: { type: "object", properties: { k: { const: "t" } }, required: ["k"] } },
    allOf: [{ type: "object", properties: { colors: { type: "array", items: { $ref: "#/$defs/color" }, minItems: 2, maxItems: 3 } }, required: ["colors"] }, { properties: { tag: { $ref: "#/$defs/tag" } }, required: ["tag"] }],
  };
  const r = await generate(schema);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const v = JSON.parse(r.body["response"] as string) as { colors: string[]; tag: { k: string } };
  assert.ok(v.colors.length >= 2 && v.colors.length <= 3 && v.colors.every((c) => c === "red" || c === "green"), JSON.stringify(v));
  assert.deepEqual(v.tag, { k: "t" });
});

test("what the grammar cannot enforce is a 400 that names the keyword, on every route", async () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ type: "frobnicate" }, /unknown type "frobnicate" at \/type/],
    [{ type: "object", properties: { a: { not: { type: "null" } } } }, /unsupported JSON Schema keyword "not" at \/properties\/a/],
    [{ type: "object", properties: { a: { $ref: "#/$defs/missing" } } }, /#\/\$defs\/missing names no definition/],
    [{ type: "object", properties: { a: { $ref: "https://example.com/s.json" } } }, /only local references/],
    [{ type: "string", pattern: "a(?=b)" }, /pattern must start with "\^" and end with "\$"/],
    [{ type: "string", pattern: "^a(?=b)$" }, /pattern not supported: a lookaround/],
    [{ type: "number", minimum: 0.5 }, /unsupported JSON Schema keyword "minimum" for type "number"/],
    [{ type: "array", items: { type: "integer" }, minItems: 100000 }, /minItems above 1000 is not supported/],
  ];
  for (const [format, message] of bad) {
    const r = await generate(format);
    assert.equal(r.status, 400, JSON.stringify(format));
    assert.match(r.body["error"] as string, message);
    assert.match(r.body["error"] as string, /^invalid format: /);
    const chat = await fetch(`${daemon.url}/api/chat`, { method: "POST", body: JSON.stringify({ model: "story", messages: [{ role: "user", content: "hi" }], format, stream: false }) });
    assert.equal(chat.status, 400);
    assert.match(((await chat.json()) as { error: string }).error, message);
  }
  const openai = await fetch(`${daemon.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "story", messages: [{ role: "user", content: "hi" }], response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: { a: { not: {} } } } } } }),
  });
  assert.equal(openai.status, 400);
  const e = (await openai.json()) as { error: { message: string; type: string } };
  assert.match(e.error.message, /unsupported JSON Schema keyword "not"/);
  assert.equal(e.error.type, "invalid_request_error");
});

test("hostile schemas are refused within bounds: depth, size, repetition", () => {
  let deep: Record<string, unknown> = { type: "integer" };
  for (let i = 0; i < 10_000; i++) deep = { type: "array", items: deep };
  assert.throws(() => jsonSchemaGrammar(deep), /nested deeper than 64 levels/);
  const wide = { type: "object", properties: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`p${i}`, { type: "integer" }])) };
  assert.throws(() => jsonSchemaGrammar(wide), /more than 10000 parts/);
  assert.throws(() => jsonSchemaGrammar({ type: "string", pattern: `^${"a".repeat(2000)}$` }), /pattern is longer than 1000 characters/);
  assert.throws(() => jsonSchemaGrammar({ type: "string", pattern: "^a{1,99999}$" }), /the repetition \{1,99999\}/);
  assert.throws(() => jsonSchemaGrammar({ type: "integer", minimum: 1e300 }), /minimum is outside/);
  // A recursive definition is a recursive rule, not an endless expansion.
  const tree = { $defs: { node: { type: "object", properties: { kids: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 } } } }, $ref: "#/$defs/node" };
  assert.match(jsonSchemaGrammar(tree), /ref-node ::= /);
});

test("a schema that is only an enum or a const at the top is a grammar the model follows", async () => {
  const choice = await generate({ enum: ["yes", "no", 3] });
  assert.equal(choice.status, 200, JSON.stringify(choice.body));
  assert.ok(['"yes"', '"no"', "3"].includes((choice.body["response"] as string).trim()), String(choice.body["response"]));
  const fixed = await generate({ const: { answer: "yes" } });
  assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
  assert.deepEqual(JSON.parse(fixed.body["response"] as string), { answer: "yes" });
});
