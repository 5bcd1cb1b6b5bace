import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { detectTemplate, editDistanceWithin, MAX_TEMPLATE_DISTANCE, nearestTemplate } from "../src/create/template-detect.ts";

const templatesDir = new URL("../src/create/templates/", import.meta.url);
const fixturesDir = new URL("./fixtures/chat-templates/", import.meta.url);
const goldensDir = new URL("./fixtures/template-goldens/", import.meta.url);
const reference = (f: string): string => readFileSync(new URL(f, templatesDir), "utf8");
const fixture = (f: string): string => readFileSync(new URL(f, fixturesDir), "utf8");

/** The stop list of each family, as Ollama's parameter file for the family gives it. */
const OLLAMA_STOPS: Record<string, string[]> = {
  alfred: ["<start_system>", "<end_message>", "<start_user>", "<start_assistant>"],
  alpaca: ["### Instruction:", "### Response"],
  chatml: ["<|im_start|>", "<|im_end|>"],
  chatqa: ["System:", "User:", "Assistant:", "<|begin_of_text|>"],
  "codellama-70b-instruct": ["Source:", "Destination:", "<step>"],
  "command-r": ["<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>"],
  "falcon-instruct": ["User:", "Assistant:"],
  "gemma-instruct": ["<start_of_turn>", "<end_of_turn>"],
  "gemma3-instruct": ["<end_of_turn>"],
  "granite-instruct": ["System:", "Question:", "Answer:"],
  "llama2-chat": ["[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"],
  "llama3-instruct": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
  magicoder: ["@@ Instruction", "@@ Response"],
  // Ollama's file for this family lists ChatML's markers, and detection gives what Ollama gives.
  "mistral-instruct": ["<|im_start|>", "<|im_end|>"],
  openchat: ["<|end_of_turn|>"],
  "phi-3": ["<|end|>", "<|system|>", "<|user|>", "<|assistant|>"],
  "solar-instruct": ["### System:", "### User:", "### Assistant"],
  "starcoder2-instruct": ["### Instruction", "### Response", "<|endoftext|>"],
  vicuna: ["USER:", "ASSISTANT:"],
  zephyr: ["<|system|>", "</s>", "<|user|>", "<|assistant|>"],
};

/** Ollama's template tests: one JSON object a line, family name to a real chat template. */
const ollamaCases: [string, string][] = readFileSync(new URL("templates.jsonl", goldensDir), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .flatMap((line) => Object.entries(JSON.parse(line) as Record<string, string>));

test("every chat template of Ollama's template tests is detected as the family Ollama names, with its stop list", () => {
  assert.equal(ollamaCases.length, 35);
  const names = new Set<string>();
  for (const [family, jinja] of ollamaCases) {
    const found = detectTemplate(jinja);
    assert.ok(found, `${family}: ${jinja.slice(0, 80)}`);
    assert.equal(found.name, family, jinja.slice(0, 80));
    assert.equal(found.template, reference(`${family}.gotmpl`));
    assert.deepEqual(found.parameters, { stop: OLLAMA_STOPS[family] }, family);
    names.add(family);
  }
  // Every family but three: two only the index holds, and no chat template Ollama knows is vicuna's.
  assert.deepEqual([...names].sort(), Object.keys(OLLAMA_STOPS).filter((f) => !["gemma3-instruct", "command-r", "vicuna"].includes(f)));
});

test("every template of the index is detected as the family it is listed under, at distance 0", () => {
  const index = JSON.parse(reference("index.json")) as { name: string; template: string }[];
  assert.equal(index.length, 37);
  for (const { name, template } of index) {
    assert.deepEqual(nearestTemplate(template), { name, distance: 0 }, template.slice(0, 80));
    assert.deepEqual(detectTemplate(template)?.parameters, { stop: OLLAMA_STOPS[name] }, name);
  }
});

test("our own reference templates are detected as their family, unless the index recognises them", () => {
  const files = readdirSync(templatesDir).filter((f) => f.endsWith(".jinja"));
  assert.ok(files.length >= 14);
  for (const file of files) {
    const family = file.split(".")[0]!;
    assert.ok(family in OLLAMA_STOPS, file);
    const found = detectTemplate(reference(file));
    // Phi-3-mini's template is 97 edits from zephyr's in the index, and the index comes first.
    assert.equal(found?.name, file === "phi-3.jinja" ? "zephyr" : family, file);
    assert.equal(found.template, reference(`${found.name}.gotmpl`));
    assert.deepEqual(found.parameters, JSON.parse(reference(`${found.name}.json`)));
  }
  assert.deepEqual(nearestTemplate(reference("phi-3.jinja")), { name: "zephyr", distance: 97 });
});

test("real templates that are not references themselves are detected by distance, the index first", () => {
  // 109 edits from the nearest index entry: our Phi-3 references recognise it.
  assert.deepEqual(nearestTemplate(fixture("phi-3.5-mini-instruct.jinja")), { name: "phi-3", distance: 23 });
  // Meta-Llama-3's first template: 41 edits from the index's.
  assert.deepEqual(nearestTemplate(reference("llama3-instruct.jinja")), { name: "llama3-instruct", distance: 41 });
  // Real templates that the index holds word for word.
  assert.deepEqual(nearestTemplate(fixture("mistral-7b-instruct-v0.1.jinja")), { name: "mistral-instruct", distance: 0 });
  assert.deepEqual(nearestTemplate(fixture("dolphin-2.5-mixtral-8x7b.jinja")), { name: "chatml", distance: 0 });
  assert.deepEqual(detectTemplate(fixture("openchat-3.5-0106.jinja"))?.parameters, { stop: ["<|end_of_turn|>"] });
});

test("a template of another format, or nonsense, is not detected", () => {
  assert.equal(detectTemplate(fixture("deepseek-r1-distill-llama-8b.jinja")), undefined);
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
