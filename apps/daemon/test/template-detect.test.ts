import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { detectTemplate, editDistanceWithin, MAX_TEMPLATE_DISTANCE, nearestTemplate } from "../src/create/template-detect.ts";

const templatesDir = new URL("../src/create/templates/", import.meta.url);
const fixturesDir = new URL("./fixtures/chat-templates/", import.meta.url);
const reference = (f: string): string => readFileSync(new URL(f, templatesDir), "utf8");
const fixture = (f: string): string => readFileSync(new URL(f, fixturesDir), "utf8");

const FAMILIES = ["chatml", "llama3-instruct", "llama2-chat", "mistral-instruct", "gemma-instruct", "phi-3", "zephyr", "vicuna", "alpaca"];

test("every reference Jinja template is detected as its own family, with our Go template and stops", () => {
  const files = readdirSync(templatesDir).filter((f) => f.endsWith(".jinja"));
  assert.ok(files.length >= FAMILIES.length);
  for (const file of files) {
    const family = file.split(".")[0]!;
    assert.ok(FAMILIES.includes(family), file);
    const found = detectTemplate(reference(file));
    assert.ok(found, file);
    assert.equal(found.name, family, file);
    assert.equal(found.template, reference(`${family}.gotmpl`));
    assert.deepEqual(found.parameters, JSON.parse(reference(`${family}.json`)));
  }
});

test("real templates that are not references are detected by distance", () => {
  assert.deepEqual(nearestTemplate(fixture("phi-3.5-mini-instruct.jinja")), { name: "phi-3", distance: 23 });
  assert.deepEqual(nearestTemplate(fixture("mistral-7b-instruct-v0.1.jinja")), { name: "mistral-instruct", distance: 7 });
  // ChatML wrapped in an extra guard: 95 edits, just inside the cut-off.
  assert.deepEqual(nearestTemplate(fixture("dolphin-2.5-mixtral-8x7b.jinja")), { name: "chatml", distance: 95 });
  const dolphin = detectTemplate(fixture("dolphin-2.5-mixtral-8x7b.jinja"));
  assert.deepEqual(dolphin?.parameters, { stop: ["<|im_start|>", "<|im_end|>"] });
});

test("a template of another format, or nonsense, is not detected", () => {
  assert.equal(detectTemplate(fixture("deepseek-r1-distill-llama-8b.jinja")), undefined);
  // 65 edits from ChatML, but it has none of ChatML's markup.
  assert.equal(editDistanceWithin(fixture("openchat-3.5-0106.jinja"), reference("chatml.jinja"), 1000), 65);
  assert.equal(detectTemplate(fixture("openchat-3.5-0106.jinja")), undefined);
  assert.equal(detectTemplate("{{ messages }}"), undefined);
  assert.equal(detectTemplate("hello world ".repeat(1000)), undefined);
  assert.equal(detectTemplate(""), undefined);
});

test("the cut-off: 99 edits from a reference is accepted, 100 is not", () => {
  const chatml = reference("chatml.jinja");
  // Appending characters adds exactly one edit each, and the result keeps ChatML's markup.
  assert.equal(detectTemplate(chatml + "x".repeat(MAX_TEMPLATE_DISTANCE - 1))?.name, "chatml");
  assert.deepEqual(nearestTemplate(chatml + "x".repeat(MAX_TEMPLATE_DISTANCE - 1)), { name: "chatml", distance: 99 });
  assert.equal(detectTemplate(chatml + "x".repeat(MAX_TEMPLATE_DISTANCE)), undefined);
  // Substitutions inside the template count the same way.
  const edited = chatml.replace("message['role']", "message['ROLE']");
  assert.deepEqual(nearestTemplate(edited), { name: "chatml", distance: 4 });
});

test("editDistanceWithin: exact below the bound, anything above it otherwise", () => {
  assert.equal(editDistanceWithin("kitten", "sitting", 10), 3);
  assert.equal(editDistanceWithin("sitting", "kitten", 10), 3);
  assert.equal(editDistanceWithin("", "abc", 10), 3);
  assert.equal(editDistanceWithin("abc", "abc", 0), 0);
  assert.equal(editDistanceWithin("flaw", "lawn", 2), 2);
  assert.ok(editDistanceWithin("flaw", "lawn", 1) > 1);
  assert.ok(editDistanceWithin("a".repeat(500), "b".repeat(500), 99) > 99);
  assert.ok(editDistanceWithin("a".repeat(500), "a".repeat(300), 99) > 99);
  // Code points, not UTF-16 units: one emoji is one edit.
  assert.equal(editDistanceWithin("a😀b", "ab", 5), 1);
});

test("editDistanceWithin agrees with the full dynamic programme on random strings", () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const full = (a: string, b: string): number => {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const cur = [i];
      for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
    return prev[b.length]!;
  };
  for (let k = 0; k < 300; k++) {
    const a = Array.from({ length: rand(40) }, () => "abc"[rand(3)]).join("");
    const b = Array.from({ length: rand(40) }, () => "abc"[rand(3)]).join("");
    const max = rand(30);
    const d = full(a, b);
    const got = editDistanceWithin(a, b, max);
    if (d <= max) assert.equal(got, d, `${a} / ${b} / ${max}`);
    else assert.ok(got > max, `${a} / ${b} / ${max}: ${got}`);
  }
});

// How much work detection does is counted in template-detect-work.test.ts.
test("detection over the longest references finds their family", () => {
  const input = reference("llama3-instruct.llama-3.1-8b-instruct.jinja").replace("26 Jul 2024", "01 Jan 2025");
  assert.equal(detectTemplate(input)?.name, "llama3-instruct");
});
