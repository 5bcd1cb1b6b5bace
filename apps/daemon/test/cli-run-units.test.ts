// The pieces of `corral run`, `ps` and `stop` that need no daemon: the interactive session's input
// assembly and command parsing, word wrap, answer rendering, timings, the ps columns, and the
// flag and request handling.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InputAssembler } from "../src/cli/multiline.ts";
import { parseSlashCommand } from "../src/cli/slash-command.ts";
import { WordWrapper } from "../src/cli/wordwrap.ts";
import { AnswerPrinter, formatToolCalls } from "../src/cli/render/answer.ts";
import { formatTimings, goDurationString } from "../src/cli/render/timings.ts";
import { processorLabel, psRows, untilLabel } from "../src/cli/commands/ps.ts";
import { reclaimThinkWord } from "../src/cli/commands/run.ts";
import {
  chatBody,
  createBody,
  generateBody,
  inferThink,
  loadBody,
  newRunOptions,
  parseFormatFlag,
  parseKeepAliveFlag,
  parseThinkFlag,
  setSystem,
} from "../src/cli/session.ts";
import { CLIError } from "../src/cli/errors.ts";

test("input: single lines are messages, empty lines nothing, slash lines commands", () => {
  const a = new InputAssembler();
  assert.deepEqual(a.push("hello there"), { kind: "message", text: "hello there" });
  assert.deepEqual(a.push(""), { kind: "none" });
  assert.deepEqual(a.push("/set verbose"), { kind: "command", line: "/set verbose" });
  assert.equal(a.continuing, false);
});

test('input: a """ block collects lines until the closing quotes and joins them with newlines', () => {
  const a = new InputAssembler();
  assert.deepEqual(a.push('"""'), { kind: "more" });
  assert.equal(a.continuing, true);
  assert.deepEqual(a.push("first line"), { kind: "more" });
  assert.deepEqual(a.push("/not a command inside a block"), { kind: "more" });
  assert.deepEqual(a.push('last line"""'), { kind: "message", text: "first line\n/not a command inside a block\nlast line" });
  assert.equal(a.continuing, false);

  assert.deepEqual(a.push('"""opening text'), { kind: "more" });
  assert.deepEqual(a.push('"""'), { kind: "message", text: "opening text" });
  assert.deepEqual(a.push('"""one line"""'), { kind: "message", text: "one line" });
  assert.deepEqual(a.push('""""""'), { kind: "none" });
});

test('input: /set system starts a system block that """ closes; Ctrl+C drops a half-typed block', () => {
  const a = new InputAssembler();
  assert.deepEqual(a.startSystem("You are terse."), { kind: "system", text: "You are terse." });
  assert.deepEqual(a.startSystem('"""You are terse."""'), { kind: "system", text: "You are terse." });
  assert.deepEqual(a.startSystem('"""You are'), { kind: "more" });
  assert.deepEqual(a.push("a pirate."), { kind: "more" });
  assert.deepEqual(a.push('"""'), { kind: "system", text: "You are\na pirate." });

  a.push('"""');
  a.push("abandoned");
  a.reset();
  assert.equal(a.continuing, false);
  assert.deepEqual(a.push("fresh"), { kind: "message", text: "fresh" });
});

test("slash commands: prefixes, arguments and unknown words as Ollama reads them", () => {
  assert.deepEqual(parseSlashCommand("/bye"), { name: "bye" });
  assert.deepEqual(parseSlashCommand("/exit"), { name: "bye" });
  assert.deepEqual(parseSlashCommand("/byebye"), { name: "bye" });
  assert.deepEqual(parseSlashCommand("/list"), { name: "list" });
  assert.deepEqual(parseSlashCommand("/list lla"), { name: "list", prefix: "lla" });
  assert.deepEqual(parseSlashCommand("/load  mistral "), { name: "load", model: "mistral" });
  assert.deepEqual(parseSlashCommand("/load"), { name: "load" });
  assert.deepEqual(parseSlashCommand("/save a b"), { name: "save" });
  assert.deepEqual(parseSlashCommand("/clear"), { name: "clear" });
  assert.deepEqual(parseSlashCommand("/set"), { name: "set-usage" });
  assert.deepEqual(parseSlashCommand("/set parameter stop <a> <b>"), { name: "set-parameter", parameter: "stop", values: ["<a>", "<b>"] });
  assert.deepEqual(parseSlashCommand("/set parameter seed"), { name: "set-parameter", values: [] });
  assert.deepEqual(parseSlashCommand("/set system   Talk   like a pirate"), { name: "set-system", text: "Talk like a pirate" });
  assert.deepEqual(parseSlashCommand("/set system"), { name: "set-system" });
  assert.deepEqual(parseSlashCommand("/set nohistory"), { name: "set-history", on: false });
  assert.deepEqual(parseSlashCommand("/set wordwrap"), { name: "set-wordwrap", on: true });
  assert.deepEqual(parseSlashCommand("/set quiet"), { name: "set-verbose", on: false });
  assert.deepEqual(parseSlashCommand("/set think high"), { name: "set-think", on: true, level: "high" });
  assert.deepEqual(parseSlashCommand("/set nothink"), { name: "set-think", on: false });
  assert.deepEqual(parseSlashCommand("/set format json"), { name: "set-format", format: "json" });
  assert.deepEqual(parseSlashCommand("/set format"), { name: "set-format", format: "" });
  assert.deepEqual(parseSlashCommand("/set noformat"), { name: "set-format", format: undefined });
  assert.deepEqual(parseSlashCommand("/set colour"), { name: "set-unknown", word: "colour" });
  assert.deepEqual(parseSlashCommand("/show"), { name: "show" });
  assert.deepEqual(parseSlashCommand("/show parameters"), { name: "show", field: "parameters" });
  assert.deepEqual(parseSlashCommand("/show weights"), { name: "show-unknown", word: "weights" });
  assert.deepEqual(parseSlashCommand("/?"), { name: "help" });
  assert.deepEqual(parseSlashCommand("/help set"), { name: "help", topic: "set" });
  assert.deepEqual(parseSlashCommand("/? /show"), { name: "help", topic: "show" });
  assert.deepEqual(parseSlashCommand("/? shortcuts"), { name: "help", topic: "shortcuts" });
  assert.deepEqual(parseSlashCommand("/quit now"), { name: "unknown", word: "/quit" });
});

function wrapInPieces(w: WordWrapper, text: string, size: number): string {
  let out = "";
  for (let i = 0; i < text.length; i += size) out += w.write(text.slice(i, i + size));
  return out + w.flush();
}

const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. " +
  "One day, she saw a big red ball.\nShe ran to it.";

test("word wrap off a terminal: lines end 5 columns before the width, at word boundaries", () => {
  for (const size of [1, 3, 7, 200]) {
    const out = wrapInPieces(new WordWrapper({ width: 30, tty: false }), STORY, size);
    const lines = out.split("\n");
    for (const l of lines) assert.ok(l.length <= 25, `${JSON.stringify(l)} is longer than 25`);
    // Only newlines were added: the words are intact and in order.
    assert.equal(out.replace(/\n/g, " ").replace(/ +/g, " "), STORY.replace(/\n/g, " "));
    assert.deepEqual(lines.slice(0, 3), ["Once upon a time, there ", "was a little girl named ", "Lily. She loved to play "]);
    assert.ok(lines.includes("She ran to it."), "a newline in the text starts a new line");
    assert.ok(!/\x1b/.test(out), "no escape sequences off a terminal");
  }
});

test("word wrap on a terminal: a word that runs over is erased and written again on the next line", () => {
  const w = new WordWrapper({ width: 20, tty: true });
  const out = w.write("aaaa bbbb cc dddddd eeee");
  // "dd" is shown, the next "d" runs past column 15, so "dd" is wiped (cursor back 2, clear to the
  // end of the line) and written again after a newline.
  assert.equal(out, "aaaa bbbb cc dd\x1b[2D\x1b[K\ndddddd eeee");
  // A space past the limit needs nothing wiped: the line just ends.
  assert.equal(new WordWrapper({ width: 20, tty: true }).write("aaaa bbbb cccc dddd"), "aaaa bbbb cccc \x1b[K\ndddd");
  assert.equal(w.flush(), "");
});

test("word wrap: a word too long to move is broken where it stands; narrow terminals are left alone", () => {
  const long = "x".repeat(40);
  const out = wrapInPieces(new WordWrapper({ width: 30, tty: false }), `ab ${long} cd`, 4);
  assert.deepEqual(out.split("\n"), ["ab " + "x".repeat(22), "x".repeat(18) + " cd"]);
  const narrow = new WordWrapper({ width: 9, tty: false });
  assert.equal(narrow.write("a long line that is not wrapped"), "a long line that is not wrapped");
});

test("word wrap measures emoji as the terminal shows them, also when one arrives a code point at a time", () => {
  const family = "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}";
  const thumb = "\u{1F44D}\u{1F3FD}";
  for (const e of [family, thumb, "\u{1F1EB}\u{1F1F7}"]) {
    const text = `${e} `.repeat(7) + "ok";
    for (const size of [1, 2, 5, 100]) {
      const w = new WordWrapper({ width: 20, tty: false });
      const points = Array.from(text);
      let out = "";
      for (let i = 0; i < points.length; i += size) out += w.write(points.slice(i, i + size).join(""));
      out += w.flush();
      // Two columns each: five and their spaces fill the 15 columns of a 20-column terminal.
      assert.deepEqual(out.split("\n"), [`${e} `.repeat(5), `${e} ${e} ok`], `${JSON.stringify(e)} in pieces of ${size}`);
    }
  }
});

function sink(tty = false): { text: string; write(s: string): void; isTTY: boolean; columns: number } {
  return {
    text: "",
    isTTY: tty,
    columns: 80,
    write(s: string) {
      this.text += s;
    },
  };
}

test("answer: thinking between its markers, then the answer; --hidethinking leaves it out", () => {
  const out = sink();
  const p = new AnswerPrinter({ out, err: sink(), wordWrap: false, hideThinking: false });
  p.piece({ content: "", thinking: "Let me " });
  p.piece({ content: "", thinking: "think." });
  p.piece({ content: "Blue." });
  p.piece({ content: " Because of Rayleigh scattering." });
  p.finish();
  assert.equal(out.text, "Thinking...\nLet me think.\n...done thinking.\n\nBlue. Because of Rayleigh scattering.");
  assert.equal(p.content, "Blue. Because of Rayleigh scattering.");
  assert.equal(p.thinking, "Let me think.");

  const hidden = sink();
  const q = new AnswerPrinter({ out: hidden, err: sink(), wordWrap: false, hideThinking: true });
  q.piece({ content: "", thinking: "secret" });
  q.piece({ content: "Blue." });
  q.finish();
  assert.equal(hidden.text, "Blue.");
});

test("answer: thinking and tool calls are grey on a terminal; invented tool calls are described", () => {
  const out = sink(true);
  const p = new AnswerPrinter({ out, err: sink(), wordWrap: false, hideThinking: false });
  p.piece({ content: "", thinking: "hmm\n" });
  p.piece({ content: "ok" });
  assert.equal(out.text, "\x1b[38;5;245m\x1b[1mThinking...\n\x1b[0m\x1b[38;5;245mhmm\n\x1b[38;5;245m\x1b[1m...done thinking.\n\n\x1b[0mok");
  assert.equal(
    formatToolCalls([{ function: { name: "get_weather", arguments: { city: "Paris" } } }, { function: { name: "now" } }], false),
    `  Model called a non-existent function 'get_weather()' with arguments: {"city":"Paris"}\n  Model called a non-existent function 'now()' with arguments: {}`,
  );
});

test("answer: word wrap applies to the streamed answer", () => {
  const out = sink();
  out.columns = 30;
  const p = new AnswerPrinter({ out, err: sink(), wordWrap: true, hideThinking: false });
  for (const piece of STORY.match(/.{1,5}/gs)!) p.piece({ content: piece });
  p.finish();
  assert.ok(out.text.split("\n").every((l) => l.length <= 25), out.text);
  assert.equal(p.content, STORY);
});

test("timings: Go's Duration strings", () => {
  assert.equal(goDurationString(0), "0s");
  assert.equal(goDurationString(999), "999ns");
  assert.equal(goDurationString(1500), "1.5µs");
  assert.equal(goDurationString(4_813_371), "4.813371ms");
  assert.equal(goDurationString(18_000_000), "18ms");
  assert.equal(goDurationString(1_208_162_125), "1.208162125s");
  assert.equal(goDurationString(2e9), "2s");
  assert.equal(goDurationString(61.5e9), "1m1.5s");
  assert.equal(goDurationString(3600e9), "1h0m0s");
  assert.equal(goDurationString(-1500), "-1.5µs");
});

test("timings: Ollama's summary lines, zero metrics left out", () => {
  const text = formatTimings({
    total_duration: 1_208_162_125,
    load_duration: 1_165_985_080,
    prompt_eval_count: 5,
    prompt_eval_duration: 4_813_371,
    eval_count: 20,
    eval_duration: 18_596_003,
  });
  assert.equal(
    text,
    "total duration:       1.208162125s\n" +
      "load duration:        1.16598508s\n" +
      "prompt eval count:    5 token(s)\n" +
      "prompt eval duration: 4.813371ms\n" +
      "prompt eval rate:     1038.77 tokens/s\n" +
      "eval count:           20 token(s)\n" +
      "eval duration:        18.596003ms\n" +
      "eval rate:            1075.50 tokens/s\n",
  );
  assert.equal(formatTimings({ total_duration: 2e9, eval_count: 0 }), "total duration:       2s\n");
  assert.equal(formatTimings({}), "");
});

test("ps: processor split, until, prefix filter", () => {
  assert.equal(processorLabel(1000, 0), "100% CPU");
  assert.equal(processorLabel(1000, 1000), "100% GPU");
  assert.equal(processorLabel(1000, 1001), "Unknown");
  assert.equal(processorLabel(1000, 520), "48%/52% CPU/GPU");
  assert.equal(processorLabel(1000, 995), "1%/99% CPU/GPU"); // 0.5 rounds away from zero

  const now = new Date("2025-01-01T12:00:00Z");
  assert.equal(untilLabel(new Date("2025-01-01T11:59:59Z"), now), "Stopping...");
  assert.equal(untilLabel(new Date("2025-01-01T12:04:30Z"), now), "4 minutes from now");
  assert.equal(untilLabel(new Date("2318-01-01T00:00:00Z"), now), "Forever");

  const models = [
    { name: "llama3.2:latest", size: 3_300_000_000, digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72", expires_at: "2025-01-01T12:04:30Z", size_vram: 3_300_000_000, context_length: 4096 },
    { name: "Story:latest", size: 1_200_000, digest: "672cb9ce835800", expires_at: "2025-01-01T11:00:00Z", size_vram: 0, context_length: 2048 },
  ];
  assert.deepEqual(psRows(models, undefined, now), [
    ["llama3.2:latest", "a80c4f17acd5", "3.3 GB", "100% GPU", "4096", "4 minutes from now"],
    ["Story:latest", "672cb9ce8358", "1.2 MB", "100% CPU", "2048", "Stopping..."],
  ]);
  assert.equal(psRows(models, "llama", now).length, 1);
  assert.equal(psRows(models, "story", now).length, 0, "the prefix is case-sensitive");
});

test("flags: --think, --keepalive and --format values", () => {
  assert.equal(parseThinkFlag(undefined), undefined);
  assert.equal(parseThinkFlag(true), true);
  assert.equal(parseThinkFlag("false"), false);
  assert.equal(parseThinkFlag("high"), "high");
  assert.throws(() => parseThinkFlag("loud"), (e: Error) => e instanceof CLIError && e.message === 'invalid value for --think: "loud" (must be true, false, high, medium, low, or max)');

  assert.equal(parseKeepAliveFlag(undefined), undefined);
  assert.equal(parseKeepAliveFlag("10m"), "10m");
  assert.equal(parseKeepAliveFlag("-1m"), -1);
  assert.equal(parseKeepAliveFlag("0"), "0");
  assert.throws(() => parseKeepAliveFlag("300"), /time: missing unit in duration "300"/);
  assert.throws(() => parseKeepAliveFlag("soon"), /time: invalid duration "soon"/);

  assert.equal(parseFormatFlag(""), undefined);
  assert.equal(parseFormatFlag("json"), "json");
  assert.deepEqual(parseFormatFlag('{"type":"object"}'), { type: "object" });
  assert.throws(() => parseFormatFlag("yaml"), CLIError);
});

test("flags: a word after a bare --think goes back among the prompt words", () => {
  assert.deepEqual(reclaimThinkWord(["qwen3", "--think", "why", "is", "it"], ["qwen3", "is", "it"], "why"), { think: true, positionals: ["qwen3", "why", "is", "it"] });
  assert.deepEqual(reclaimThinkWord(["--keepalive", "5m", "--think", "qwen3", "hi"], ["hi"], "qwen3"), { think: true, positionals: ["qwen3", "hi"] });
  assert.deepEqual(reclaimThinkWord(["qwen3", "--think", "high", "hi"], ["qwen3", "hi"], "high"), { think: "high", positionals: ["qwen3", "hi"] });
  // Written as --think=value, it is the flag's value and must be valid.
  assert.deepEqual(reclaimThinkWord(["qwen3", "--think=loud", "hi"], ["qwen3", "hi"], "loud"), { think: "loud", positionals: ["qwen3", "hi"] });
  assert.deepEqual(reclaimThinkWord(["qwen3", "--think"], ["qwen3"], true), { think: true, positionals: ["qwen3"] });
});

test("requests: generate, chat, load and /save bodies carry the session's choices", () => {
  const o = newRunOptions("story");
  assert.deepEqual(generateBody(o), { model: "story", prompt: "", options: {} });
  o.prompt = "Once upon a time";
  o.format = "json";
  o.keepAlive = "10m";
  o.think = "low";
  o.options = { temperature: 0, seed: 2n ** 60n };
  assert.deepEqual(generateBody(o), { model: "story", prompt: "Once upon a time", format: "json", options: { temperature: 0, seed: 2 ** 60 }, keep_alive: "10m", think: "low" });
  assert.deepEqual(loadBody({ model: "story", keepAlive: 0, think: undefined }), { model: "story", keep_alive: 0 });

  setSystem(o, "first");
  setSystem(o, "second");
  assert.deepEqual(o.messages, [{ role: "system", content: "second" }], "a trailing system message is replaced");
  o.messages.push({ role: "user", content: "hi" });
  setSystem(o, "third");
  assert.deepEqual(o.messages.map((m) => m.content), ["second", "hi", "third"]);
  assert.equal(chatBody(o)["messages"], o.messages);

  o.loadedMessages = [{ role: "user", content: "stored" }];
  o.parentModel = "library/base:1b";
  const save = createBody("mine", o);
  assert.equal(save["from"], "library/base:1b");
  assert.equal(save["system"], "third");
  assert.deepEqual(save["parameters"], { temperature: 0, seed: 2 ** 60 });
  assert.deepEqual((save["messages"] as unknown[]).length, 4, "stored messages come first, then the session's");
  o.parentModel = "not a name!";
  assert.equal(createBody("mine", o)["from"], "story", "an invalid parent falls back to the model itself");
});

test("think defaults to on for models that can think, unless chosen", () => {
  assert.equal(inferThink(["completion", "thinking"], undefined, false), true);
  assert.equal(inferThink(["completion"], undefined, false), undefined);
  assert.equal(inferThink(["completion", "thinking"], false, true), false);
});
