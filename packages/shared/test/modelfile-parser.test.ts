import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  INVALID_COMMAND,
  INVALID_MESSAGE_ROLE,
  ModelfileError,
  formatParams,
  parseModelfile,
  splitMessageArgs,
  type ModelfileCommand,
} from "@corral/shared/modelfile/index";

const nameArgs = (cmds: ModelfileCommand[]): Array<[string, string]> => cmds.map((c) => [c.name, c.args]);

function parseError(input: string | Uint8Array): ModelfileError {
  try {
    parseModelfile(input);
  } catch (err) {
    assert.ok(err instanceof ModelfileError, `expected ModelfileError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(input)} to fail`);
}

describe("values and quoting", () => {
  const rows: Array<{ input: string; want: Array<[string, string]> }> = [
    { input: "FROM     FOOO BAR    ", want: [["model", "FOOO BAR"]] },
    { input: 'FROM "     model 1"', want: [["model", "     model 1"]] },
    { input: "FROM llama3 # note", want: [["model", "llama3 # note"]] },
    { input: "  # comment\nFROM x", want: [["model", "x"]] },
    { input: 'FROM x\nSYSTEM """\nThis is a\nmultiline system.\n"""', want: [["model", "x"], ["system", "\nThis is a\nmultiline system.\n"]] },
    { input: 'FROM x\nSYSTEM """"""', want: [["model", "x"], ["system", ""]] },
    { input: 'FROM x\nSYSTEM ""', want: [["model", "x"], ["system", ""]] },
    { input: "FROM x\nSYSTEM \"'\"", want: [["model", "x"], ["system", "'"]] },
    { input: 'FROM x\nSYSTEM hello "world"', want: [["model", "x"], ["system", 'hello "world"']] },
    { input: "FROM x\nSYSTEM \n", want: [["model", "x"], ["system", ""]] },
    { input: 'FROM x\nPARAMETER stop "### User: "', want: [["model", "x"], ["stop", "### User: "]] },
    { input: "FROM x\nPARAMETER stop ### User: ", want: [["model", "x"], ["stop", "### User:"]] },
    { input: 'FROM x\nPARAMETER stop """### User:\n"""', want: [["model", "x"], ["stop", "### User:\n"]] },
    { input: "FROM x\nPARAMETER  temperature 0.5", want: [["model", "x"], ["", "temperature 0.5"]] },
    { input: 'FROM x\r\nSYSTEM """a\r\nb"""\r\n', want: [["model", "x"], ["system", "a\r\nb"]] },
  ];
  for (const row of rows) {
    it(JSON.stringify(row.input), () => {
      assert.deepEqual(nameArgs(parseModelfile(row.input)), row.want);
    });
  }

  const eofRows = [
    'FROM x\nSYSTEM """This is a multiline system.""',
    'FROM x\nSYSTEM """This is a multiline system.""\n',
    'FROM x\nSYSTEM "hello" world',
    'FROM x\nSYSTEM "hello" world\n',
    'FROM x\nTEMPLATE """{{ .Prompt }}""" trailing',
  ];
  for (const input of eofRows) {
    it(`${JSON.stringify(input)} → unexpected EOF`, () => {
      const err = parseError(input);
      assert.equal(err.message, "unexpected EOF");
      assert.equal(err.line, undefined);
      assert.equal(err.commandLine, 2);
    });
  }

  it("a bare SYSTEM followed by a newline is an invalid command reported on the next line", () => {
    const err = parseError("FROM x\nSYSTEM\n");
    assert.equal(err.message, `(line 3): ${INVALID_COMMAND}`);
    assert.equal(err.line, 3);
  });

  it("two spaces after PARAMETER give an empty name that FormatParams rejects", () => {
    const [, cmd] = parseModelfile("FROM x\nPARAMETER  temperature 0.5\n");
    assert.ok(cmd);
    assert.throws(() => formatParams({ [cmd.name]: [cmd.args] }), { message: "unknown parameter ''" });
  });
});

describe("exact error strings", () => {
  const cases: Array<{ input: string; message: string; line?: number }> = [
    { input: "FROM x\nFOO bar\n", message: `(line 2): ${INVALID_COMMAND}`, line: 2 },
    { input: "FROM x\nFROM1 y\n", message: `(line 2): ${INVALID_COMMAND}`, line: 2 },
    { input: "FROM x\nFROM_y z\n", message: `(line 2): ${INVALID_COMMAND}`, line: 2 },
    { input: "FROM x\n\n\nSYSTEM\nabc", message: `(line 5): ${INVALID_COMMAND}`, line: 5 },
    { input: "FROM x\nMESSAGE tool hi\n", message: `(line 2): ${INVALID_MESSAGE_ROLE}`, line: 2 },
    { input: "FROM x\nMESSAGE System hi\n", message: `(line 2): ${INVALID_MESSAGE_ROLE}`, line: 2 },
    { input: "FROM x\nMESSAGE  user hi\n", message: `(line 2): ${INVALID_MESSAGE_ROLE}`, line: 2 },
    { input: "FROM x\nMESSAGE system\n", message: "unexpected EOF: system" },
    { input: "FROM x\nPARAMETER temperature\n", message: "unexpected EOF: temperature" },
    { input: "FROM x\nPARAMETER top-k 1\n", message: "unexpected EOF: top" },
    { input: "FROM x\nPARAMETER", message: "unexpected EOF" },
    { input: "FROM x\nPARAMETER temperature", message: "unexpected EOF" },
    { input: "FROM x\nMESSAGE user", message: "unexpected EOF" },
    { input: "FROM", message: "unexpected EOF" },
    { input: "SYSTEM hi\n", message: "no FROM line" },
    { input: "", message: "no FROM line" },
    { input: "# only a comment\n", message: "no FROM line" },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.input)} → ${c.message}`, () => {
      const err = parseError(c.input);
      assert.equal(err.message, c.message);
      assert.equal(err.line, c.line);
      assert.equal(err.reason, c.message.replace(/^\(line \d+\): /, ""));
    });
  }

  it("CR and LF each count as a line in error messages, as in Ollama", () => {
    assert.equal(parseError("FROM x\r\nFOO y\r\n").message, `(line 3): ${INVALID_COMMAND}`);
  });
});

describe("commands", () => {
  it("recognises every keyword in any case and keeps parameter names as written", () => {
    const text = [
      "from base",
      "License MIT",
      "TEMPLATE {{ .Prompt }}",
      "system be brief",
      "ADAPTER ./lora.gguf",
      "draft ./draft.gguf",
      "RENDERER qwen3",
      "parser qwen3",
      "requires v0.14.0",
      "PARAMETER Temperature 0.1",
      "parameter num_ctx 4096",
      "MESSAGE user hello there",
    ].join("\n");
    assert.deepEqual(nameArgs(parseModelfile(text)), [
      ["model", "base"],
      ["license", "MIT"],
      ["template", "{{ .Prompt }}"],
      ["system", "be brief"],
      ["adapter", "./lora.gguf"],
      ["draft", "./draft.gguf"],
      ["renderer", "qwen3"],
      ["parser", "qwen3"],
      ["requires", "v0.14.0"],
      ["Temperature", "0.1"],
      ["num_ctx", "4096"],
      ["message", "user: hello there"],
    ]);
  });

  it("MESSAGE accepts system, user and assistant and keeps multi-line content", () => {
    const cmds = parseModelfile('FROM x\nMESSAGE system Be terse.\nMESSAGE user """Two\nlines"""\nMESSAGE assistant "  padded  "\n');
    const messages = cmds.filter((c) => c.name === "message").map((c) => splitMessageArgs(c.args));
    assert.deepEqual(messages, [
      { role: "system", content: "Be terse." },
      { role: "user", content: "Two\nlines" },
      { role: "assistant", content: "  padded  " },
    ]);
  });

  it("splits message args at the first ': ' only", () => {
    assert.deepEqual(splitMessageArgs("user: a: b"), { role: "user", content: "a: b" });
  });

  it("allows several FROM lines and commands in any order", () => {
    const cmds = parseModelfile("SYSTEM s\nFROM ./model.gguf\nFROM ./mmproj.gguf\n");
    assert.deepEqual(nameArgs(cmds), [["system", "s"], ["model", "./model.gguf"], ["model", "./mmproj.gguf"]]);
  });

  it("records the line each command starts on, counting CRLF once", () => {
    const cmds = parseModelfile('# header\n\nFROM x\nTEMPLATE """a\nb\nc"""\n  PARAMETER stop x\n');
    assert.deepEqual(cmds.map((c) => [c.name, c.line]), [["model", 3], ["template", 4], ["stop", 7]]);
    const crlf = parseModelfile("FROM x\r\nSYSTEM y\r\n\r\nPARAMETER seed 1\r\n");
    assert.deepEqual(crlf.map((c) => [c.name, c.args, c.line]), [["model", "x", 1], ["system", "y", 2], ["seed", "1", 4]]);
  });

  it("treats a lone CR as a line break", () => {
    assert.deepEqual(nameArgs(parseModelfile("FROM x\rSYSTEM y\r")), [["model", "x"], ["system", "y"]]);
  });

  it("keeps tabs and inner spacing inside values but trims the ends", () => {
    assert.deepEqual(nameArgs(parseModelfile("FROM x\nSYSTEM \ta\t b  \t\n")), [["model", "x"], ["system", "a\t b"]]);
    assert.deepEqual(nameArgs(parseModelfile("FROM\tx")), [["model", "x"]]);
  });
});

describe("comments", () => {
  it("skips comment lines, indented ones included, but not text after a value", () => {
    const cmds = parseModelfile("# one\n\t# two\nFROM x # three\n   # four\nSYSTEM #hash\n");
    assert.deepEqual(nameArgs(cmds), [["model", "x # three"], ["system", "#hash"]]);
  });

  it("a comment at end of file without newline is fine", () => {
    assert.deepEqual(nameArgs(parseModelfile("FROM x\n# trailing")), [["model", "x"]]);
  });
});

describe("multi-line quoted values", () => {
  it("keeps everything between triple quotes, quotes and blank lines included", () => {
    const tpl = '{{ if .System }}<|system|>\n{{ .System }}\n\n{{ end }}"quoted" text\n  indented';
    const cmds = parseModelfile(`FROM x\nTEMPLATE """${tpl}"""\nPARAMETER stop "<|end|>"\n`);
    assert.deepEqual(nameArgs(cmds), [["model", "x"], ["template", tpl], ["stop", "<|end|>"]]);
  });

  it("a single-quoted value may span lines too", () => {
    assert.deepEqual(nameArgs(parseModelfile('FROM x\nSYSTEM "a\nb"\n')), [["model", "x"], ["system", "a\nb"]]);
  });

  it("a triple-quoted value ends at the first line ending in triple quotes", () => {
    assert.deepEqual(nameArgs(parseModelfile('FROM x\nSYSTEM """a"""\nSYSTEM b\n')), [["model", "x"], ["system", "a"], ["system", "b"]]);
  });
});

describe("input decoding and character filtering", () => {
  const text = "# comment\nFROM ünï日😀\nSYSTEM héllo\n";
  const want: Array<[string, string]> = [["model", "ünï日😀"], ["system", "héllo"]];

  it("reads UTF-8 bytes without a BOM", () => {
    assert.deepEqual(nameArgs(parseModelfile(Buffer.from(text, "utf8"))), want);
  });

  it("strips a UTF-8 BOM (bytes and string)", () => {
    assert.deepEqual(nameArgs(parseModelfile(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, "utf8")]))), want);
    assert.deepEqual(nameArgs(parseModelfile("\ufeff" + text)), want);
  });

  it("reads UTF-16 LE and BE with a BOM", () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    assert.deepEqual(nameArgs(parseModelfile(le)), want);
    const be = Buffer.from(le);
    be.swap16();
    assert.equal(be[0], 0xfe);
    assert.deepEqual(nameArgs(parseModelfile(be)), want);
  });

  it("UTF-16 without a BOM is read as UTF-8 and fails", () => {
    const err = parseError(Buffer.from("FROM x\n", "utf16le"));
    assert.equal(err.message, `(line 1): ${INVALID_COMMAND}`);
  });

  it("invalid UTF-8 becomes U+FFFD, which is kept", () => {
    const bytes = Buffer.concat([Buffer.from("FROM a"), Buffer.from([0xff]), Buffer.from("b\n")]);
    assert.deepEqual(nameArgs(parseModelfile(bytes)), [["model", "a\ufffdb"]]);
  });

  it("drops control characters, NBSP and zero-width spaces from values", () => {
    const cmds = parseModelfile("FROM x\nSYSTEM a\u0001b\u00a0c\u200bd\u007fe\u0085f\n");
    assert.deepEqual(nameArgs(cmds), [["model", "x"], ["system", "abcdef"]]);
  });

  it("an unprintable rune where a command starts is swallowed", () => {
    assert.deepEqual(nameArgs(parseModelfile("\u0001FROM x\n\u00a0SYSTEM y\n")), [["model", "x"], ["system", "y"]]);
  });

  it("an unprintable rune inside a keyword is an invalid command", () => {
    assert.equal(parseError("FR\u0001OM x\n").message, `(line 1): ${INVALID_COMMAND}`);
  });
});
