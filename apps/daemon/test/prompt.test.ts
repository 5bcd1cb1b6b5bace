// Prompt construction: Go and Jinja templates, and truncation to the context window (docs/daemon.md, "Templates and prompts").
import { test } from "node:test";
import assert from "node:assert/strict";
import { compileTemplate, isJinja, render, renderTruncated } from "../src/runner/prompt.ts";

const CHATML_GO = "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";
const CHATML_JINJA =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const conversation = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "one" },
  { role: "assistant", content: "two" },
  { role: "user", content: "three" },
];

test("Go and Jinja ChatML templates render the same prompt", () => {
  assert.equal(isJinja(CHATML_GO), false);
  assert.equal(isJinja(CHATML_JINJA), true);
  const go = render(compileTemplate(CHATML_GO), { messages: conversation });
  const jinja = render(compileTemplate(CHATML_JINJA), { messages: conversation });
  assert.equal(go, jinja);
  assert.equal(go, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\none<|im_end|>\n<|im_start|>assistant\ntwo<|im_end|>\n<|im_start|>user\nthree<|im_end|>\n<|im_start|>assistant\n");
});

test("a legacy template gets the conversation turn by turn", () => {
  const t = compileTemplate("{{ if .System }}[SYS]{{ .System }}[/SYS]{{ end }}[INST]{{ .Prompt }}[/INST]{{ .Response }}");
  assert.equal(render(t, { messages: conversation }), "[SYS]Be brief.[/SYS][INST]one[/INST]two[INST]three[/INST]");
});

test("truncation drops the oldest turns but keeps system messages and the last message", () => {
  const t = compileTemplate(CHATML_GO);
  const words = (s: string): number => s.split(/\s+/).filter(Boolean).length;
  const full = render(t, { messages: conversation });
  assert.equal(renderTruncated(t, { messages: conversation }, { numCtx: 1000, countTokens: words }), full);
  const cut = renderTruncated(t, { messages: conversation }, { numCtx: 3, countTokens: words });
  assert.match(cut, /system\nBe brief\./);
  assert.doesNotMatch(cut, /\none</);
  assert.match(cut, /three/);
  // Even when nothing fits, the system message and the last message stay.
  const least = renderTruncated(t, { messages: conversation }, { numCtx: 0, countTokens: words });
  assert.equal(least, render(t, { messages: [conversation[0]!, conversation[3]!] }));
  // truncate: false renders everything.
  assert.equal(renderTruncated(t, { messages: conversation }, { numCtx: 0, countTokens: words, truncate: false }), full);
});

test("a broken template is a template error", () => {
  assert.throws(() => compileTemplate("{{ .Prompt "), /template error/);
});
