// The render limits must never touch a real template: every template in create/templates (the Go
// templates the daemon installs and the Jinja ones it recognises) and the chat templates among the
// test fixtures render a 200-message conversation, with and without tools, within the base limits
// (not the larger ones a conversation this long gets), using a small share of the step budget,
// and the Jinja ones render exactly what @huggingface/jinja's own renderer renders. A Go template
// with tools in the style of Ollama's does the same with tool calls.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";
import { compileTemplate, renderWithin, type RenderInput } from "../src/runner/prompt.ts";
import { DEFAULT_LIMITS, RenderBudget } from "../src/template/index.ts";
import type { ChatMessage } from "../src/template/index.ts";

const dirs = [new URL("../src/create/templates/", import.meta.url), new URL("./fixtures/chat-templates/", import.meta.url)];
const files = dirs.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith(".jinja") || f.endsWith(".gotmpl")).map((f) => ({ name: f, text: readFileSync(new URL(f, dir), "utf8") })));

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The current weather in a city",
      parameters: { type: "object", properties: { city: { type: "string", description: "The city" }, unit: { type: "string", enum: ["c", "f"] } }, required: ["city"] },
    },
  },
  { type: "function", function: { name: "get_time", description: "The time now", parameters: { type: "object", properties: {} } } },
];

/** 200 alternating turns ending with the user's, each a paragraph long, after a system message when `system`. */
function conversation(system: boolean): ChatMessage[] {
  const messages: ChatMessage[] = system ? [{ role: "system", content: "You are a helpful assistant. Answer briefly." }] : [];
  for (let i = 0; i < 100; i++) {
    messages.push({ role: "user", content: `Question ${i}: ${"what is the weather like where you are today? ".repeat(4)}` });
    if (i < 99) messages.push({ role: "assistant", content: `Answer ${i}: ${"it is sunny and warm, with a light breeze. ".repeat(6)}` });
  }
  messages.push({ role: "assistant", content: "One more thing?" }, { role: "user", content: "Yes: and tomorrow?" });
  return messages;
}

const BUDGET_SHARE = 0.05;

test("real templates render a 200-message conversation, with and without tools, well within the base limits", () => {
  assert.ok(files.length >= 25, `found ${files.length} templates`);
  let rendered = 0;
  for (const { name, text } of files) {
    const t = compileTemplate(text);
    assert.equal(t.kind, name.endsWith(".jinja") ? "jinja" : "go", name);
    for (const withTools of [false, true]) {
      // Some templates refuse a system message (gemma) or want strict alternation from the start (mistral).
      for (const system of [true, false]) {
        const input: RenderInput = { messages: conversation(system), ...(withTools ? { tools } : {}), bosToken: "<s>", eosToken: "</s>" };
        const budget = new RenderBudget({ ...DEFAULT_LIMITS, maxMillis: Infinity });
        let out: string;
        try {
          out = renderWithin(t, input, budget);
        } catch (e) {
          if (system && /system|alternate/i.test((e as Error).message)) continue;
          throw new Error(`${name}${withTools ? " with tools" : ""}: ${(e as Error).message}`);
        }
        const what = `${name}${withTools ? " with tools" : ""}${system ? "" : " without a system message"}`;
        assert.ok(out.includes("Question 99") && out.includes("and tomorrow?"), what);
        assert.ok(budget.stepsTaken < BUDGET_SHARE * DEFAULT_LIMITS.maxSteps, `${what}: ${budget.stepsTaken} steps`);
        assert.ok(budget.workDone < BUDGET_SHARE * DEFAULT_LIMITS.maxWork, `${what}: ${budget.workDone} characters of work`);
        if (t.kind === "jinja") {
          const expected = new Template(text).render({ messages: input.messages, ...(withTools ? { tools } : {}), add_generation_prompt: true, bos_token: "<s>", eos_token: "</s>" });
          assert.equal(out, expected, `${what}: the same text as @huggingface/jinja renders`);
        }
        rendered++;
        break;
      }
    }
  }
  assert.equal(rendered, 2 * files.length, "every template rendered with and without tools");
});

/** A Go template with tools in the style of Ollama's: the last message found with `slice` on every message, tools as JSON, tool calls and results. */
const GO_TOOLS_TEMPLATE = `{{- if .System }}<|system|>{{ .System }}{{ end }}
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}
{{- if and $.Tools $last }}<|tools|>{{ range $.Tools }}{{ json . }}
{{ end }}{{ end }}<|user|>{{ .Content }}
{{- else if eq .Role "assistant" }}<|assistant|>{{ .Content }}
{{- range .ToolCalls }}<|call|>{"name": "{{ .Function.Name }}", "arguments": {{ json .Function.Arguments }}}{{ end }}
{{- else if eq .Role "tool" }}<|tool|>{{ .Content }}
{{- end }}
{{- if $last }}<|assistant|>{{ end }}
{{- end }}`;

test("a Go template with tools renders a 200-message conversation with tool calls well within the base limits", () => {
  const messages: ChatMessage[] = [{ role: "system", content: "You are a helpful assistant." }];
  for (let i = 0; i < 50; i++) {
    messages.push({ role: "user", content: `What is the weather in city ${i}? ${"Please be precise. ".repeat(4)}` });
    messages.push({ role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { city: `city ${i}`, unit: "c" } } }] });
    messages.push({ role: "tool", content: `{"temperature": ${i}, "sky": "clear"}`, tool_name: "get_weather" });
    messages.push({ role: "assistant", content: `It is ${i} degrees and clear in city ${i}.` });
  }
  messages.push({ role: "user", content: "Thanks!" });
  const budget = new RenderBudget({ ...DEFAULT_LIMITS, maxMillis: Infinity });
  const out = renderWithin(compileTemplate(GO_TOOLS_TEMPLATE), { messages, tools }, budget);
  assert.match(out, /<\|tools\|>\{"type":"function","function":\{"name":"get_weather"/);
  assert.match(out, /<\|call\|>\{"name": "get_weather", "arguments": \{"city":"city 49","unit":"c"\}\}<\|tool\|>/);
  assert.ok(out.endsWith("<|user|>Thanks!<|assistant|>"));
  assert.ok(budget.stepsTaken < BUDGET_SHARE * DEFAULT_LIMITS.maxSteps, `${budget.stepsTaken} steps`);
  assert.ok(budget.workDone < BUDGET_SHARE * DEFAULT_LIMITS.maxWork, `${budget.workDone} characters of work`);
});
