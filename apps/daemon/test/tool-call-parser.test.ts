// Tool calls read from an answer as it streams (runner/tool-call-parser.ts) and the tag a model's
// template announces them with (runner/tool-call-tag.ts): the formats of Qwen 2.5 / Hermes,
// Llama 3.1 / 3.2 and Mistral, split at every position, with text around the calls, malformed
// JSON, unknown tool names, several calls, and the bounds on what is held back; and a call with
// its result rendered back into the next prompt by a Go template and a Jinja one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chatBody } from "../src/api/handlers/bodies.ts";
import { answerParser, type ParsedPiece, type PieceParser } from "../src/runner/answer-parser.ts";
import { assembleChat } from "../src/runner/prompt-assembly.ts";
import { compileTemplate } from "../src/runner/prompt.ts";
import { parserForTags } from "../src/runner/thinking-parser.ts";
import { BARE_JSON, MAX_CALL_CHARS, MAX_JSON_DEPTH, toolCallParser } from "../src/runner/tool-call-parser.ts";
import { parserTag, templateToolCallTag, toolCallsParser } from "../src/runner/tool-call-tag.ts";

const tool = (name: string) => ({ type: "function", function: { name, description: "", parameters: { type: "object", properties: {} } } });
const tools = [tool("get_weather"), tool("get_time"), tool("get")];

interface Result {
  content: string;
  thinking: string;
  calls: Array<{ index: number | undefined; name: string; arguments: unknown }>;
}

/** Feeds `pieces` to a fresh parser and gathers everything it gave back, the end included. */
function run(make: () => PieceParser, pieces: readonly string[]): Result {
  const p = make();
  const parts: ParsedPiece[] = pieces.map((x) => p.add(x));
  parts.push(p.end());
  return {
    content: parts.map((x) => x.content).join(""),
    thinking: parts.map((x) => x.thinking).join(""),
    calls: parts.flatMap((x) => x.toolCalls).map((c) => ({ index: c.function.index, name: c.function.name, arguments: c.function.arguments })),
  };
}

const parse = (tag: string, pieces: readonly string[]): Result => run(() => toolCallParser({ tag, tools }), pieces);

/** The same answer in one piece, split in two at every position, and one character at a time, reads the same. */
function sameAtEverySplit(tag: string, text: string): Result {
  const whole = parse(tag, [text]);
  for (let i = 0; i <= text.length; i++) assert.deepEqual(parse(tag, [text.slice(0, i), text.slice(i)]), whole, `split at ${i}`);
  assert.deepEqual(parse(tag, [...text]), whole, "one character at a time");
  return whole;
}

test("Qwen 2.5 / Hermes: calls between <tool_call> tags, the text before them content, at every split", () => {
  const text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"unit": "c", "city": "Oslo"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';
  const r = sameAtEverySplit("<tool_call>", text);
  assert.equal(r.content, "Let me check.\n");
  assert.deepEqual(r.calls, [
    { index: 0, name: "get_weather", arguments: { unit: "c", city: "Oslo" } },
    { index: 1, name: "get_time", arguments: {} },
  ]);
  // The model's order of the arguments is kept.
  assert.deepEqual(Object.keys(r.calls[0]!.arguments as object), ["unit", "city"]);
});

test("arguments may come as a JSON string, as `parameters`, before the name, or not at all", () => {
  const r = parse("<tool_call>", [
    '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}</tool_call>',
    '<tool_call>{"arguments": {"city": "Lima"}, "name": "get_weather"}</tool_call>',
    '<tool_call>{"name": "get_weather", "parameters": {"city": "Baku"}}</tool_call>',
    '<tool_call>{"name": "get_time"}</tool_call>',
    '<tool_call>{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Bern"}}}</tool_call>',
  ]);
  assert.equal(r.content, "");
  assert.deepEqual(
    r.calls.map((c) => [c.index, c.name, c.arguments]),
    [
      [0, "get_weather", { city: "Rome" }],
      [1, "get_weather", { city: "Lima" }],
      [2, "get_weather", { city: "Baku" }],
      [3, "get_time", {}],
      [4, "get_weather", { city: "Bern" }],
    ],
  );
});

test("text after a call is content; the closing tag and the whitespace between calls are not", () => {
  const r = sameAtEverySplit("<tool_call>", '<tool_call>{"name": "get", "arguments": {"k": "}"}}</tool_call>\n\nDone: {x}.');
  assert.deepEqual(r.calls, [{ index: 0, name: "get", arguments: { k: "}" } }]);
  assert.equal(r.content, "Done: {x}.");
});

test("a call to a tool the request does not have, or malformed JSON, stays content, and later calls are still read", () => {
  const unknown = '<tool_call>{"name": "launch", "arguments": {}}</tool_call>';
  const broken = '<tool_call>{"name": "get_time", "arguments": {"a": }}</tool_call>';
  const good = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>';
  const r = sameAtEverySplit("<tool_call>", `${unknown} ${broken} ${good}`);
  assert.equal(r.content, `${unknown} ${broken} `);
  assert.deepEqual(r.calls, [{ index: 0, name: "get_time", arguments: {} }]);
  // A prefix of a tool's name is not that tool.
  assert.equal(parse("<tool_call>", ['<tool_call>{"name": "get_weat", "arguments": {}}']).calls.length, 0);
});

test("a partial tag is held back until the next piece decides it, and is content if the answer ends there", () => {
  const p = toolCallParser({ tag: "<tool_call>", tools });
  assert.equal(p.add("Hi <tool").content, "Hi ");
  assert.equal(p.add("box> there <tool_").content, "<toolbox> there ");
  assert.deepEqual(p.end(), { content: "<tool_", thinking: "", toolCalls: [] });
  // So is a call that never closed.
  assert.equal(parse("<tool_call>", ['<tool_call>{"name": "get_time", "argu']).content, '<tool_call>{"name": "get_time", "argu');
});

test("Llama 3.1 / 3.2: an answer that opens with a JSON call is one, with or without <|python_tag|>", () => {
  const r = sameAtEverySplit(BARE_JSON, '  {"name": "get_weather", "parameters": {"city": "Paris"}}');
  assert.deepEqual(r.calls, [{ index: 0, name: "get_weather", arguments: { city: "Paris" } }]);
  assert.equal(r.content, "  ");
  const tagged = sameAtEverySplit(BARE_JSON, '<|python_tag|>{"name": "get_time", "parameters": {}}; {"name": "get", "parameters": {"q": 1}}');
  assert.deepEqual(tagged.calls.map((c) => [c.index, c.name]), [[0, "get_time"], [1, "get"]]);
  assert.equal(tagged.content, "");
});

test("bare JSON: text first, JSON that is not a call, or code is all content", () => {
  for (const text of [
    'Sure: {"name": "get_time", "parameters": {}}',
    '{"name": "jeff"} {"name": "get_time", "parameters": {}}',
    '{"name": "launch", "parameters": {}}',
    'for { fmt.Println("hi") }',
    "[special delivery]",
    "[]",
    "<|python_tag|>brave_search.call(query=\"x\")",
    "<|pyth",
  ]) {
    const r = sameAtEverySplit(BARE_JSON, text);
    assert.deepEqual(r, { content: text, thinking: "", calls: [] }, text);
  }
});

test("Mistral: [TOOL_CALLS] before a list of calls, and the newer name[ARGS]{…} form", () => {
  const nemo = sameAtEverySplit("[TOOL_CALLS][", '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Nice"}}, {"name": "get_time", "arguments": {}}]');
  assert.deepEqual(nemo.calls.map((c) => [c.index, c.name, c.arguments]), [[0, "get_weather", { city: "Nice" }], [1, "get_time", {}]]);
  assert.equal(nemo.content, "");
  const ministral = sameAtEverySplit("[TOOL_CALLS]", '[TOOL_CALLS]get_weather[ARGS]{"city": "Metz"}[TOOL_CALLS]get_time[ARGS]{}');
  assert.deepEqual(ministral.calls.map((c) => [c.index, c.name, c.arguments]), [[0, "get_weather", { city: "Metz" }], [1, "get_time", {}]]);
  // A list with one call to an unknown tool is no list of calls at all.
  const mixed = '[TOOL_CALLS][{"name": "get_time", "arguments": {}}, {"name": "launch", "arguments": {}}]';
  assert.deepEqual(parse("[TOOL_CALLS][", [mixed]), { content: mixed, thinking: "", calls: [] });
  const wrongName = "[TOOL_CALLS]launch[ARGS]{}";
  assert.equal(parse("[TOOL_CALLS]", [wrongName]).content, wrongName);
});

test("indexes count the calls of the whole answer, across pieces", () => {
  const r = parse("<tool_call>", ['<tool_call>{"name": "get", "arguments": {"n": 1}}</tool_call>', "<tool_call>", '{"name": "get", "arguments": {"n": 2}}</tool_call><tool_call>{"name": "get", "arguments": {"n": 3}}']);
  assert.deepEqual(r.calls.map((c) => c.index), [0, 1, 2]);
});

test("bounds: a call that outgrows MAX_CALL_CHARS or nests past MAX_JSON_DEPTH is content", () => {
  const long = `<tool_call>{"name": "get", "arguments": {"x": "${"a".repeat(MAX_CALL_CHARS)}"}}</tool_call>`;
  const pieces = long.match(/[\s\S]{1,4096}/g)!;
  const big = parse("<tool_call>", pieces);
  assert.equal(big.calls.length, 0);
  assert.equal(big.content, long);
  const deep = `<tool_call>{"name": "get", "arguments": {"x": ${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}}}</tool_call>`;
  assert.deepEqual(parse("<tool_call>", [deep]), { content: deep, thinking: "", calls: [] });
  const deepString = `<tool_call>{"name": "get", "arguments": ${JSON.stringify(`{"x": ${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}}`)}}</tool_call>`;
  assert.equal(parse("<tool_call>", [deepString]).calls.length, 0);
  // Just within the bounds is a call.
  const within = `<tool_call>{"name": "get", "arguments": {"x": ${"[".repeat(MAX_JSON_DEPTH - 2)}${"]".repeat(MAX_JSON_DEPTH - 2)}}}</tool_call>`;
  assert.equal(parse("<tool_call>", [within]).calls.length, 1);
});

test("after the thinking stage: reasoning, then calls read from the content", () => {
  const make = (): PieceParser => answerParser({ thinking: parserForTags({ opening: "<think>", closing: "</think>" }), tools: toolCallParser({ tag: "<tool_call>", tools }) });
  const text = '<think>The weather tool.</think>\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>';
  const whole = run(make, [text]);
  for (let i = 0; i <= text.length; i++) assert.deepEqual(run(make, [text.slice(0, i), text.slice(i)]), whole, `split at ${i}`);
  assert.deepEqual(whole, { content: "", thinking: "The weather tool.", calls: [{ index: 0, name: "get_weather", arguments: { city: "Oslo" } }] });
});

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/tool-templates/${name}`, import.meta.url), "utf8");

test("tags from real Jinja chat templates", () => {
  const cases: Array<[string, string]> = [
    ["qwen2.5-7b-instruct.jinja", "<tool_call>"],
    ["hermes-3-llama-3.1-8b-tool_use.jinja", "<tool_call>"],
    ["llama-3.1-8b-instruct.jinja", BARE_JSON],
    ["llama-3.2-3b-instruct.jinja", BARE_JSON],
    ["mistral-nemo-instruct-2407.jinja", "[TOOL_CALLS]["],
  ];
  for (const [file, tag] of cases) assert.equal(templateToolCallTag(compileTemplate(fixture(file))), tag, file);
});

test("tags from Go templates: the first text of the .ToolCalls block, cut before the JSON", () => {
  const cases: Array<[string, string]> = [
    ['{{ range .Messages }}{{ if .ToolCalls }}<tool_call>\n{{ range .ToolCalls }}{"name": "{{ .Function.Name }}"}{{ end }}</tool_call>{{ end }}{{ end }}', "<tool_call>"],
    ['{{- range .Messages }}{{- if .ToolCalls }}  [TOOL_CALLS] [{{ range .ToolCalls }}{"name": "{{ .Function.Name }}"}{{ end }}]{{ end }}{{ end }}', "[TOOL_CALLS] ["],
    ['{{ range .Messages }}{{ if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}"}{{ end }}{{ end }}{{ end }}', BARE_JSON],
    ['{{ range .Messages }}{{ if .ToolCalls }}{{ .Content }}<after>{{ end }}{{ end }}', BARE_JSON],
    ["{{ if .Tools }}tools{{ end }}{{ .Prompt }}", BARE_JSON],
    ['{{ range .Messages }}{{ if .ToolCalls }}\r\n<|python_tag|>\r\n{"name": "{{ .Name }}"}{{ end }}{{ end }}', "<|python_tag|>"],
  ];
  for (const [template, tag] of cases) assert.equal(templateToolCallTag(compileTemplate(template)), tag, template);
  // The tag found reads the calls it announces, whatever whitespace it ends with.
  const r = parse("[TOOL_CALLS] [", ['[TOOL_CALLS] [{"name": "get", "arguments": {}}]']);
  assert.equal(r.calls.length, 1);
});

test("PARSER names: Corral's built-in tags, else the template's, as for a name Ollama does not know", () => {
  assert.equal(parserTag("qwen3"), "<tool_call>");
  assert.equal(parserTag("qwen3-thinking"), "<tool_call>");
  assert.equal(parserTag("ministral"), "[TOOL_CALLS]");
  for (const name of ["passthrough", "harmony", "no-such-parser", "constructor", "", undefined]) assert.equal(parserTag(name), undefined, String(name));
  const qwenTemplate = fixture("qwen2.5-7b-instruct.jinja");
  const read = (parser: string | undefined, text: string): Result => run(() => toolCallsParser({ template: qwenTemplate, parser }, tools)!, [text]);
  assert.equal(read("ministral", "[TOOL_CALLS]get_time[ARGS]{}").calls.length, 1);
  assert.equal(read("no-such-parser", '<tool_call>{"name": "get_time"}</tool_call>').calls.length, 1);
  assert.equal(toolCallsParser({ template: qwenTemplate, parser: undefined }, undefined), undefined);
});

test("a call and its result, as a chat body sends them, render in a Go template and in a Jinja one", () => {
  const body = chatBody.parse({
    messages: [
      { role: "user", content: "Weather?" },
      { role: "assistant", content: "", tool_calls: [{ id: "call_x1", function: { index: 0, name: "get_weather", arguments: { unit: "c", city: "Oslo" } } }] },
      { role: "tool", content: "Sunny", tool_name: "get_weather", tool_call_id: "call_x1" },
    ],
  });
  const model = { template: undefined as string | undefined, system: "", messages: [], numCtx: 4096 };
  const go = '{{ range .Messages }}{{ if .ToolCalls }}{{ range .ToolCalls }}[{{ .ID }} {{ .Function.Name }} {{ .Function.Arguments }}]{{ end }}{{ else if eq .Role "tool" }}<{{ .ToolCallID }} {{ .ToolName }}: {{ .Content }}>{{ end }}{{ end }}';
  const rendered = assembleChat({ ...model, template: go }, { messages: body.messages, think: { think: false, level: "", set: false }, truncate: false }, () => 0);
  assert.equal(rendered, '[call_x1 get_weather {"city":"Oslo","unit":"c"}]<call_x1 get_weather: Sunny>');
  const jinja = "{% for m in messages %}{% if m.tool_calls %}{% for c in m.tool_calls %}[{{ c.id }} {{ c.type }} {{ c.function | tojson }}]{% endfor %}{% elif m.role == 'tool' %}<{{ m.tool_call_id }} {{ m.name }}: {{ m.content }}>{% endif %}{% endfor %}";
  const viaJinja = assembleChat({ ...model, template: jinja }, { messages: body.messages, think: { think: false, level: "", set: false }, truncate: false }, () => 0);
  assert.equal(viaJinja, '[call_x1 function {"name": "get_weather", "arguments": {"unit": "c", "city": "Oslo"}}]<call_x1 get_weather: Sunny>');
});
