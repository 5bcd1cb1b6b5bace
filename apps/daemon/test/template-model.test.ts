import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ChatMessage,
  parseModelTemplate,
  parseTemplate,
  renderModelTemplate,
  templateVars,
  TemplateError,
  toTypeScriptType,
  truncateAfterResponse,
} from "../src/template/index.ts";

const CHATML = "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";
const LLAMA3 =
  "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n";
const MISTRAL = `{{- range $i, $m := .Messages }}
{{- if eq $m.Role "user" }}[INST] {{ if and $.System (eq (len (slice $.Messages $i)) 1) }}{{ $.System }}

{{ end }}{{ $m.Content }}[/INST]
{{- else if eq $m.Role "assistant" }} {{ $m.Content }}</s>
{{- end }}
{{- end }}`;
const LEGACY_INST = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] {{ .Response }}";

/** A llama3.1-style template with tools, tool calls and tool results. */
const LLAMA_TOOLS = `{{- if or .System .Tools }}<|start_header_id|>system<|end_header_id|>
{{- if .System }}

{{ .System }}
{{- end }}
{{- if .Tools }}

You can call these tools:
{{ range .Tools }}{{ json . }}
{{ end }}
{{- end }}<|eot_id|>
{{- end }}
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- if $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>
{{- if .ToolCalls }}

{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}
{{- else }}

{{ .Content }}
{{- end }}{{ if not $last }}<|eot_id|>{{ end }}
{{- else if eq .Role "tool" }}<|start_header_id|>ipython<|end_header_id|>

{{ .Content }}<|eot_id|>{{ if $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- end }}
{{- end }}`;

const CONVERSATION: ChatMessage[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Hello friend!" },
  { role: "assistant", content: "Hello human!" },
  { role: "user", content: "What is your name?" },
];

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the weather",
    parameters: {
      type: "object",
      properties: { unit: { type: "string", enum: ["c", "f"] }, city: { type: ["string", "null"], description: "City <name>" } },
      required: ["city"],
    },
  },
};
const WEATHER_JSON =
  '{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","required":["city"],' +
  '"properties":{"city":{"type":["string","null"],"description":"City \\u003cname\\u003e"},"unit":{"type":"string","enum":["c","f"]}}}}}';

describe("model templates: messages mode", () => {
  // Expected outputs were produced by Go's text/template with the same template and data.
  const cases: [string, string, string][] = [
    [
      "chatml",
      CHATML,
      "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n<|im_start|>assistant\nHello human!<|im_end|>\n" +
        "<|im_start|>user\nWhat is your name?<|im_end|>\n<|im_start|>assistant\n",
    ],
    [
      "llama3-instruct",
      LLAMA3,
      "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello friend!<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello human!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is your name?<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ],
    ["mistral (if, range $i, $m)", MISTRAL, "[INST] Hello friend![/INST] Hello human!</s>[INST] You are terse.\n\nWhat is your name?[/INST]"],
  ];
  for (const [name, src, want] of cases) {
    it(name, () => assert.equal(renderModelTemplate(parseModelTemplate(src), { messages: CONVERSATION }), want));
  }

  it("llama3-style with tools, a tool call and a tool result", () => {
    const out = renderModelTemplate(parseModelTemplate(LLAMA_TOOLS), {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { unit: "c", city: "Paris" } } }] },
        { role: "tool", content: "22C" },
      ],
      tools: [WEATHER_TOOL],
    });
    assert.equal(
      out,
      "<|start_header_id|>system<|end_header_id|>\n\nBe brief.\n\nYou can call these tools:\n" +
        WEATHER_JSON +
        "\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" +
        '{"name": "get_weather", "parameters": {"city":"Paris","unit":"c"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n22C<|eot_id|>' +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("prints tools, properties and property types the way Go's template types do", () => {
    const t = parseModelTemplate(
      "{{ .Tools }}|{{ range .Tools }}{{ range $k, $v := .Function.Parameters.Properties }}{{ $k }}={{ $v.Type }}:{{ toTypeScriptType $v }};{{ end }}{{ end }}|{{ .Prompt }}{{ .Messages }}",
    );
    assert.equal(renderModelTemplate(t, { messages: [], tools: [WEATHER_TOOL] }), `[${WEATHER_JSON}]|city=[string null]:string | null;unit=string:string;|<no value>[]`);
    assert.equal(renderModelTemplate(t, { messages: [] }).split("|")[0], "null");
  });

  it("merges consecutive messages of one role and joins all system messages", () => {
    const t = parseModelTemplate("{{ .System }}|{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}");
    const out = renderModelTemplate(t, {
      messages: [
        { role: "system", content: "s1" },
        { role: "user", content: "a" },
        { role: "user", content: "b" },
        { role: "system", content: "s2" },
        { role: "tool", content: "t1" },
        { role: "tool", content: "t2" },
      ],
    });
    assert.equal(out, "s1\n\ns2|system:s1;user:a\n\nb;system:s2;tool:t1;tool:t2;");
  });
});

describe("model templates: legacy prompt/response mode", () => {
  it("renders earlier turns whole and stops the last one after .Response", () => {
    const t = parseModelTemplate(LEGACY_INST);
    const out = renderModelTemplate(t, { messages: CONVERSATION.slice(1) });
    assert.equal(out, "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] ");
  });

  it("appends {{ .Response }} to a template that names neither .Messages nor .Response", () => {
    const t = parseModelTemplate("{{ .System }} {{ .Prompt }}");
    assert.equal(t.source, "{{ .System }} {{ .Prompt }}");
    assert.equal(t.execute({ System: "S", Prompt: "P", Response: "R" }), "S PR");
    assert.equal(parseTemplate("{{ .System }} {{ .Prompt }}").execute({ System: "S", Prompt: "P", Response: "R" }), "S P");
    const out = renderModelTemplate(t, {
      messages: [
        { role: "system", content: "sys" },
        { role: "user", content: "u1" },
        { role: "assistant", content: "a1" },
        { role: "user", content: "u2" },
        { role: "assistant", content: "prefill" },
      ],
    });
    assert.equal(out, "sys u1a1 u2prefill");
  });

  it("suffix mode passes prompt and suffix", () => {
    const t = parseModelTemplate("<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>");
    assert.equal(renderModelTemplate(t, { messages: [], prompt: "def f(", suffix: "return x" }), "<PRE> def f( <SUF>return x <MID>");
  });

  it("truncateAfterResponse keeps the first .Response and drops everything after it", () => {
    const t = parseTemplate("A{{ if .X }}B{{ .Response }}C{{ else }}D{{ end }}E{{ .Prompt }}");
    assert.equal(truncateAfterResponse(t).execute({ X: true, Response: "R", Prompt: "P" }), "ABR");
    assert.equal(t.execute({ X: true, Response: "R", Prompt: "P" }), "ABRCEP", "the original tree is untouched");
    const piped = parseTemplate("{{ .Prompt }}{{ .Response | printf \"%s!\" }}tail");
    assert.equal(truncateAfterResponse(piped).execute({ Prompt: "P", Response: "R" }), "P");
  });
});

describe("model templates: identifiers and errors", () => {
  it("templateVars lists every field and variable name used (declarations alone do not count)", () => {
    const t = parseTemplate(`{{ define "x" }}{{ .Tools }}{{ end }}{{ range $i, $m := .Messages }}{{ $m.ToolCalls }}{{ .Function.Name }}{{ $.System }}{{ end }}`);
    assert.deepEqual(templateVars(t), ["$", "$m", "function", "messages", "name", "system", "toolcalls", "tools"]);
  });

  it("a template call without a pipeline is rejected", () => {
    assert.throws(
      () => parseModelTemplate('{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}'),
      (e: unknown) => e instanceof TemplateError && e.message === "undefined template specified",
    );
  });

  it("bad TEMPLATEs give errors a create can report as `template error: …`", () => {
    const cases: [string, string][] = [
      ["{{ .Prompt ", "template error: template: :1: unclosed action"],
      ["{{ bogus .Prompt }}", 'template error: template: :1: function "bogus" not defined'],
      ["{{ if .System }}{{ .System }}", "template error: template: :1: unexpected EOF"],
      ["{{ .System | 3 }}", "template error: template: :1: non executable command in pipeline stage 2"],
    ];
    for (const [src, want] of cases) {
      assert.throws(
        () => parseModelTemplate(src),
        (e: unknown) => e instanceof TemplateError && `template error: ${e.message}` === want,
      );
    }
  });
});

describe("model templates: Ollama's extra functions", () => {
  it("currentDate and yesterdayDate are local YYYY-MM-DD", () => {
    const [today, yesterday] = parseTemplate('{{ currentDate }} {{ yesterdayDate "ignored" }}').execute(null).split(" ");
    assert.match(today!, /^\d{4}-\d{2}-\d{2}$/);
    const d = new Date();
    assert.equal(today, `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`);
    assert.ok(yesterday! < today!);
  });

  it("toTypeScriptType maps JSON-schema types", () => {
    assert.equal(toTypeScriptType({ type: "integer" }), "number");
    assert.equal(toTypeScriptType({ Type: ["array", "null"] }), "any[] | null");
    assert.equal(toTypeScriptType({ anyOf: [{ type: "object" }, { type: "boolean" }] }), "Record<string, any> | boolean");
    assert.equal(toTypeScriptType({ description: "no type" }), "any");
    assert.equal(toTypeScriptType("not a property"), "any");
  });
});
