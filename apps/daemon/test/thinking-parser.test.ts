// The thinking stage of an answer (runner/thinking-parser.ts): which tags a template's thinking
// uses (Go and Jinja templates, real ones from test/fixtures), and the streaming split of generated
// text into thinking and content — whitespace around the tags, text held back while a tag may still
// be forming (checked by cutting the same text at every position), starting inside the thinking,
// no closing tag, empty thinking; and earlier answers losing their thinking before a prompt is built.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parserForTags, thinkingParser, thinkingTags, withoutThinking, type ThinkingTags } from "../src/runner/thinking-parser.ts";
import { assembleChat } from "../src/runner/prompt-assembly.ts";
import type { PieceParser } from "../src/runner/answer-parser.ts";

const fixture = (path: string): string => readFileSync(new URL(`./fixtures/${path}`, import.meta.url), "utf8");
const THINK: ThinkingTags = { opening: "<think>", closing: "</think>" };

/** Feeds `pieces` one by one, then ends; returns the joined thinking and content. */
function feed(parser: PieceParser, pieces: readonly string[]): { thinking: string; content: string } {
  let thinking = "";
  let content = "";
  for (const p of [...pieces.map((x) => parser.add(x)), parser.end()]) {
    thinking += p.thinking;
    content += p.content;
    assert.deepEqual(p.toolCalls, []);
  }
  return { thinking, content };
}

const whole = (text: string, tags = THINK, inside = false): { thinking: string; content: string } => feed(parserForTags(tags, inside), [text]);

// ---- tags ----

test("tags: a Qwen3-style Go template thinks with <think> and </think>", () => {
  assert.deepEqual(thinkingTags(fixture("thinking-templates/qwen3-style.gotmpl")), THINK);
});

test("tags: Jinja templates of the <think> family (DeepSeek-R1, its distills, Qwen3)", () => {
  for (const f of ["thinking-templates/llama-cpp-deepseek-r1.jinja", "thinking-templates/qwen3.jinja", "chat-templates/deepseek-r1-distill-llama-8b.jinja"]) {
    assert.deepEqual(thinkingTags(fixture(f)), THINK, f);
  }
});

test("tags: Jinja templates without thinking have none", () => {
  for (const f of ["chat-templates/phi-3.5-mini-instruct.jinja", "chat-templates/dolphin-2.5-mixtral-8x7b.jinja"]) assert.equal(thinkingTags(fixture(f)), undefined, f);
});

test("tags: a Jinja template that only strips past reasoning at </think> thinks, unless it keeps reasoning_content", () => {
  const strips = "{% for m in messages %}{% set content = m['content'] %}{{ content.split('</think>')[-1] }}{% endfor %}";
  assert.deepEqual(thinkingTags(strips), THINK);
  assert.deepEqual(thinkingTags(strips.replace(/'/g, '"')), THINK);
  assert.equal(thinkingTags(`${strips}{{ messages[0].reasoning_content }}`), undefined);
});

test("tags: the first and last text around .Thinking, trimmed, whatever they are", () => {
  const t = "{{ range .Messages }}{{ if .Thinking }}  [[reason]]\n{{ .Thinking }}\n[[/reason]]  {{ end }}{{ .Content }}{{ end }}";
  assert.deepEqual(thinkingTags(t), { opening: "[[reason]]", closing: "[[/reason]]" });
});

test("tags: a later .Thinking decides over an earlier one", () => {
  const t = "{{ range .Messages }}<a>{{ .Thinking }}</a>{{ if .Thinking }}<b>{{ .Thinking }}</b>{{ end }}{{ end }}";
  assert.deepEqual(thinkingTags(t), { opening: "<b>", closing: "</b>" });
});

test("tags: none unless .Thinking sits in a range over .Messages between two texts", () => {
  const none = [
    "{{ if .Think }}/think{{ end }}{{ range .Messages }}{{ .Content }}{{ end }}", // only the request's switch
    "{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Prompt }}", // outside any range
    "{{ range .Tools }}<think>{{ .Thinking }}</think>{{ end }}", // a range over something else
    "{{ range .Messages }}{{ range .Parts }}<think>{{ .Thinking }}</think>{{ end }}{{ end }}", // the nearest range is not over messages
    "{{ range $.Messages }}<think>{{ .Thinking }}</think>{{ end }}", // reached through a variable, not the field
    "{{ range .Messages }}{{ .Role }}<think>{{ .Thinking }}{{ end }}", // no closing text
    "{{ range .Messages }}{{ .Thinking }}</think>{{ end }}", // no opening text
  ];
  for (const t of none) assert.equal(thinkingTags(t), undefined, t);
});

test("tags: no template, an empty one or one that does not parse has none", () => {
  assert.equal(thinkingTags(undefined), undefined);
  assert.equal(thinkingTags(""), undefined);
  assert.equal(thinkingTags("{{ range .Messages }}<think>{{ .Thinking }</think>{{ end }}"), undefined);
});

// ---- the parser ----

test("parse: thinking between the tags, content after; whitespace after either tag and before the opening one is dropped", () => {
  assert.deepEqual(whole("<think>weigh it</think>It is blue."), { thinking: "weigh it", content: "It is blue." });
  assert.deepEqual(whole(" \n<think>\n\n weigh it \n</think>\n\n It is blue. "), { thinking: "weigh it \n", content: "It is blue. " });
});

test("parse: text before an opening tag means no thinking; the text stays as written, tags and all", () => {
  assert.deepEqual(whole("  Once <think>x</think> y"), { thinking: "", content: "  Once <think>x</think> y" });
  assert.deepEqual(whole("Once"), { thinking: "", content: "Once" });
});

test("parse: only the first thinking block is thinking", () => {
  assert.deepEqual(whole("<think>a</think><think>b</think>c"), { thinking: "a", content: "<think>b</think>c" });
});

test("parse: empty thinking", () => {
  assert.deepEqual(whole("<think></think>answer"), { thinking: "", content: "answer" });
  assert.deepEqual(whole("<think>\n\n</think>\n\nanswer"), { thinking: "", content: "answer" });
  assert.deepEqual(whole("<think></think>"), { thinking: "", content: "" });
});

test("parse: no closing tag: everything after the opening tag is thinking", () => {
  assert.deepEqual(whole("<think> still going"), { thinking: "still going", content: "" });
});

test("parse: whitespace is Go's: NBSP and ideographic spaces count, a byte-order mark does not", () => {
  assert.deepEqual(whole("\u00a0<think>\u2003x</think>\u3000y"), { thinking: "x", content: "y" });
  assert.deepEqual(whole("\ufeff<think>x</think>y"), { thinking: "", content: "\ufeff<think>x</think>y" });
});

test("parse: a prompt that ends with the opening tag starts the answer inside the thinking", () => {
  const template = fixture("thinking-templates/llama-cpp-deepseek-r1.jinja");
  const inside = thinkingParser(template, { think: true, promptText: "<｜User｜>Why?<｜end▁of▁sentence｜><｜Assistant｜><think>\n" });
  assert.ok(inside);
  assert.deepEqual(feed(inside, ["\n Because", " light</th", "ink>\n\nBlue."]), { thinking: "Because light", content: "Blue." });
  const outside = thinkingParser(template, { think: true, promptText: "<｜User｜>Why?<｜Assistant｜>" });
  assert.ok(outside);
  assert.deepEqual(feed(outside, ["\n Because"]), { thinking: "", content: "\n Because" });
});

test("parse: started inside with no closing tag, everything is thinking, a held-back partial tag too", () => {
  assert.deepEqual(feed(parserForTags(THINK, true), ["Once upon", " a time</thi"]), { thinking: "Once upon a time</thi", content: "" });
});

test("parse: the generation ending on what might have been the opening tag gives it back as content", () => {
  assert.deepEqual(feed(parserForTags(THINK), ["  ", "<thi"]), { thinking: "", content: "  <thi" });
  assert.deepEqual(feed(parserForTags(THINK), ["\n\n"]), { thinking: "", content: "\n\n" });
});

test("parse: nothing is given out while a tag may still be forming, and all of it once it cannot be", () => {
  const p = parserForTags(THINK);
  assert.deepEqual(p.add("  <th"), { thinking: "", content: "", toolCalls: [] });
  assert.deepEqual(p.add("ink>ab"), { thinking: "ab", content: "", toolCalls: [] });
  assert.deepEqual(p.add("c</thi"), { thinking: "c", content: "", toolCalls: [] });
  assert.deepEqual(p.add("s is not it</"), { thinking: "</this is not it", content: "", toolCalls: [] });
  assert.deepEqual(p.add("think>"), { thinking: "", content: "", toolCalls: [] });
  assert.deepEqual(p.add("\n"), { thinking: "", content: "", toolCalls: [] });
  assert.deepEqual(p.add(" Done"), { thinking: "", content: "Done", toolCalls: [] });
  assert.deepEqual(p.add(" "), { thinking: "", content: " ", toolCalls: [] });
  assert.deepEqual(p.end(), { thinking: "", content: "", toolCalls: [] });
});

/** Every way of cutting `text` into two pieces, and into three, and one character at a time. */
function* cuts(text: string): Generator<string[]> {
  yield [...text];
  for (let i = 0; i <= text.length; i++) {
    yield [text.slice(0, i), text.slice(i)];
    for (let j = i; j <= text.length; j++) yield [text.slice(0, i), text.slice(i, j), text.slice(j)];
  }
}

test("parse: cutting the text anywhere, tags included, gives the same split", () => {
  const cases: Array<{ text: string; tags?: ThinkingTags; inside?: boolean; want: { thinking: string; content: string } }> = [
    { text: " <think>\n a<b </thin </think>\n c<think>d", want: { thinking: "a<b </thin ", content: "c<think>d" } },
    { text: "x <think>y</think>", want: { thinking: "", content: "x <think>y</think>" } },
    { text: "\n a </think> \n\n b", inside: true, want: { thinking: "a ", content: "b" } },
    // A closing tag that overlaps itself: the first whole occurrence ends the thinking.
    { text: "[o]xabaababab", tags: { opening: "[o]", closing: "abab" }, want: { thinking: "xaba", content: "ab" } },
    { text: "<<think>>x<</think>>y", tags: { opening: "<think>", closing: "</think>" }, want: { thinking: "", content: "<<think>>x<</think>>y" } },
    { text: "<think>x<</think>>y", want: { thinking: "x<", content: ">y" } },
  ];
  for (const c of cases) {
    assert.deepEqual(whole(c.text, c.tags, c.inside), c.want, c.text);
    for (const pieces of cuts(c.text)) assert.deepEqual(feed(parserForTags(c.tags ?? THINK, c.inside), pieces), c.want, JSON.stringify(pieces));
  }
});

test("parse: a long closing tag that overlaps itself, fed a character at a time, is found where it first ends", () => {
  const closing = `${"a".repeat(2000)}b`;
  const text = `${"a".repeat(5000)}b${"a".repeat(10)}b`;
  const p = parserForTags({ opening: "[o]", closing }, true);
  assert.deepEqual(feed(p, [...text]), { thinking: "a".repeat(3000), content: `${"a".repeat(10)}b` });
});

test("no thinking stage without think, or for a template without tags", () => {
  assert.equal(thinkingParser(fixture("thinking-templates/qwen3.jinja"), { think: false, promptText: "<think>" }), undefined);
  assert.equal(thinkingParser("{{ .Prompt }}", { think: true, promptText: "<think>" }), undefined);
  assert.equal(thinkingParser(undefined, { think: true, promptText: "<think>" }), undefined);
});

test("earlier answers: the content after the thinking is kept; an answer that never closes its thinking keeps nothing", () => {
  assert.equal(withoutThinking("<think>\nplan\n</think>\n\nHello"), "Hello");
  assert.equal(withoutThinking("Hello <think>x</think>"), "Hello <think>x</think>");
  assert.equal(withoutThinking("<think>still planning"), "");
});

test("earlier answers lose their thinking before the last user message, for the models that ask for it", () => {
  const turns = "{{ range .Messages }}[{{ .Role }}] {{ .Content }} {{ end }}";
  const model = { template: turns, system: "", messages: [{ role: "assistant", content: "<think>a</think>stored" }], numCtx: 1000 };
  const req = {
    messages: [
      { role: "user", content: "q1" },
      { role: "assistant", content: "<think>b</think> one" },
      { role: "user", content: "q2" },
      { role: "assistant", content: "<think>c</think>two" },
    ],
    think: { think: true, level: "medium", set: true },
    truncate: false,
  };
  const words = (t: string): number => t.length;
  assert.equal(assembleChat({ ...model, stripsPastThinking: true }, req, words), "[assistant] stored [user] q1 [assistant] one [user] q2 [assistant] <think>c</think>two ");
  assert.equal(assembleChat(model, req, words), "[assistant] <think>a</think>stored [user] q1 [assistant] <think>b</think> one [user] q2 [assistant] <think>c</think>two ");
  assert.equal(req.messages[1]!.content, "<think>b</think> one", "the request is left as it was");
});

/** The split of a whole answer, written plainly from the rules, to hold the streaming parser to. */
function reference(text: string, inside: boolean): { thinking: string; content: string } {
  const skip = (from: number): number => {
    let i = from;
    while (i < text.length && /[ \n]/.test(text[i]!)) i++;
    return i;
  };
  let pos = 0;
  if (!inside) {
    const start = skip(0);
    if (!text.startsWith(THINK.opening, start)) return { thinking: "", content: text };
    pos = start + THINK.opening.length;
  }
  pos = skip(pos);
  const close = text.indexOf(THINK.closing, pos);
  if (close < 0) return { thinking: text.slice(pos), content: "" };
  const after = close + THINK.closing.length;
  return { thinking: text.slice(pos, close), content: text.slice(skip(after)) };
}

test("parse: random answers cut at random places split as the plain rules say", () => {
  // A fixed seed: the same cases every run. The letters make tags, near-tags and whitespace likely.
  let seed = 20251204;
  const random = (n: number): number => {
    // mulberry32: 32-bit integer steps, so no precision is lost.
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const words = ["<think>", "</think>", "<", "</", "think", ">", " ", "\n", "a", "</th", "<thi", "nk>"];
  for (let round = 0; round < 3000; round++) {
    let text = "";
    for (let n = random(12); n > 0; n--) text += words[random(words.length)];
    const inside = random(2) === 1;
    const pieces: string[] = [];
    for (let at = 0; at < text.length; ) {
      const len = 1 + random(6);
      pieces.push(text.slice(at, at + len));
      at += len;
    }
    assert.deepEqual(feed(parserForTags(THINK, inside), pieces), reference(text, inside), JSON.stringify({ pieces, inside }));
  }
});
