// The prompt a generate or chat request becomes (runner/prompt-assembly.ts): where the system
// prompt goes, when the model's MESSAGE history is replayed, what `context` leaves out, and
// truncation to num_ctx. Tokens are counted as words here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assembleChat, assembleGenerate, type GeneratePrompt, type PromptModel } from "../src/runner/prompt-assembly.ts";

const TURNS = "{{ range .Messages }}[{{ .Role }}] {{ .Content }} {{ end }}";
const words = (s: string): number => s.split(/\s+/).filter(Boolean).length;
const noThink = { think: false, level: "", set: false };

const model: PromptModel = {
  template: TURNS,
  system: "Be brief.",
  messages: [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
  ],
  numCtx: 100,
};

const ask = (over: Partial<GeneratePrompt>): GeneratePrompt => ({ prompt: "why", suffix: "", system: "", template: "", continues: false, think: noThink, truncate: true, ...over });

test("generate: the model's SYSTEM, then its MESSAGE history, then the prompt", () => {
  assert.equal(assembleGenerate(model, ask({}), words), "[system] Be brief. [user] hi [assistant] hello [user] why ");
});

test("generate: the request's system replaces the model's; an empty one leaves it", () => {
  assert.equal(assembleGenerate(model, ask({ system: "Be long." }), words), "[system] Be long. [user] hi [assistant] hello [user] why ");
  assert.equal(assembleGenerate({ ...model, system: "" }, ask({}), words), "[user] hi [assistant] hello [user] why ");
});

test("generate: a context continues an earlier answer, so the MESSAGE history is not replayed", () => {
  assert.equal(assembleGenerate(model, ask({ continues: true }), words), "[system] Be brief. [user] why ");
});

test("generate: the request's template wins and is never truncated; no template at all is the prompt itself", () => {
  const own = ask({ template: "{{ range .Messages }}{{ .Content }}|{{ end }}" });
  assert.equal(assembleGenerate({ ...model, numCtx: 1 }, own, words), "Be brief.|hi|hello|why|");
  assert.equal(assembleGenerate({ ...model, template: undefined, messages: [] }, ask({}), words), "why");
});

test("generate: truncation to num_ctx drops the oldest history but keeps the system prompt and the prompt", () => {
  assert.equal(assembleGenerate({ ...model, numCtx: 8 }, ask({}), words), "[system] Be brief. [assistant] hello [user] why ");
  assert.equal(assembleGenerate({ ...model, numCtx: 1 }, ask({}), words), "[system] Be brief. [user] why ");
  assert.equal(assembleGenerate({ ...model, numCtx: 1 }, ask({ truncate: false }), words), "[system] Be brief. [user] hi [assistant] hello [user] why ");
});

test("chat: the MESSAGE history comes before the request's messages, the model's SYSTEM before both", () => {
  const req = { messages: [{ role: "user", content: "why" }], think: noThink, truncate: true };
  assert.equal(assembleChat(model, req, words), "[system] Be brief. [user] hi [assistant] hello [user] why ");
});

test("chat: a request that opens with its own system message keeps it in place of the model's", () => {
  const req = { messages: [{ role: "system", content: "Be long." }, { role: "user", content: "why" }], think: noThink, truncate: true };
  assert.equal(assembleChat(model, req, words), "[user] hi [assistant] hello [system] Be long. [user] why ");
  // A system message later in the conversation does not displace the model's.
  const later = { messages: [{ role: "user", content: "why" }, { role: "system", content: "Now long." }], think: noThink, truncate: true };
  assert.equal(assembleChat(model, later, words), "[system] Be brief. [user] hi [assistant] hello [user] why [system] Now long. ");
});

test("chat: truncation to num_ctx keeps system messages and the last message", () => {
  const req = { messages: [{ role: "user", content: "one two three" }, { role: "assistant", content: "four" }, { role: "user", content: "why" }], think: noThink, truncate: true };
  assert.equal(assembleChat({ ...model, numCtx: 7 }, req, words), "[system] Be brief. [assistant] four [user] why ");
  assert.equal(assembleChat({ ...model, numCtx: 0 }, req, words), "[system] Be brief. [user] why ");
  assert.equal(words(assembleChat({ ...model, numCtx: 0 }, { ...req, truncate: false }, words)), 15);
});

test("chat: tools and thinking reach the template", () => {
  const t = "{{ if .Tools }}tools:{{ len .Tools }} {{ end }}{{ if .Think }}think:{{ .ThinkLevel }} {{ end }}{{ range .Messages }}{{ .Content }}{{ end }}";
  const req = { messages: [{ role: "user", content: "why" }], tools: [{ type: "function", function: { name: "f" } }], think: { think: true, level: "high", set: true }, truncate: true };
  assert.equal(assembleChat({ ...model, template: t, system: "", messages: [] }, req, words), "tools:1 think:high why");
});
