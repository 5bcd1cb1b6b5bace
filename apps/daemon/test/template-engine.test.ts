import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { goJSON, parseTemplate, TemplateError } from "../src/template/index.ts";

/**
 * Go stores JSON objects in map[string]any; a JS Map is the engine's Go map
 * (sorted iteration and JSON keys), so table data is converted to Maps.
 */
const asGoMaps = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(asGoMaps) : v && typeof v === "object" ? new Map(Object.entries(v).map(([k, x]) => [k, asGoMaps(x)])) : v;

function run(src: string, data: unknown): { out?: string; err?: string } {
  try {
    return { out: parseTemplate(src).execute(data) };
  } catch (e) {
    assert.ok(e instanceof TemplateError, `expected TemplateError, got ${String(e)}`);
    return { err: e.message };
  }
}

/**
 * Each expected output or error below is what Go's text/template printed for the same
 * source and data (template.New("").Option("missingkey=zero"), plus a `json` function).
 */
const goParity: { src: string; data?: unknown; out?: string; err?: string }[] = [
  { src: "plain text", out: "plain text" },
  { src: "a  {{- 1 -}}  b", out: "a1b" },
  { src: "a \n\t {{- 1}} \n b", out: "a1 \n b" },
  { src: "a {{1 -}}\n\n b", out: "a 1b" },
  { src: "x {{- /* comment */ -}} y", out: "xy" },
  { src: "x {{/* comment */}} y", out: "x  y" },
  { src: "x\n{{- /* multi\nline */}}\ny", out: "x\ny" },
  { src: "{{-3}}", out: "-3" },
  { src: "{{ -3 }}", out: "-3" },
  { src: "{{- -3 -}}", out: "-3" },
  { src: "a{{ 1 }}\n{{- 2 }}b", out: "a12b" },
  { src: "{{ .A }}-{{ .B.C }}-{{ .B.D }}", data: {"A":"x","B":{"C":2}}, out: "x-2-<no value>" },
  { src: "{{ $x := .A }}{{ $x }}{{ $x = \"changed\" }}{{ $x }}", data: {"A":"orig"}, out: "origchanged" },
  { src: "{{ $.A }}{{ with .B }}{{ $.A }}{{ .C }}{{ end }}", data: {"A":"root","B":{"C":"c"}}, out: "rootrootc" },
  { src: "{{ . }}", data: "dotstr", out: "dotstr" },
  { src: "{{ .A }}", data: {"A":null}, out: "<no value>" },
  { src: "{{ print .A }}", data: {"A":null}, out: "<nil>" },
  { src: "{{ (.B).C }}{{ (index .L 1).N }}", data: {"B":{"C":"chained"},"L":[{"N":1},{"N":2}]}, out: "chained2" },
  { src: "{{ \"s\\t\\u00e9\\x41\" }}{{ `raw\\n` }}{{ 42 }}{{ 1.5 }}{{ true }}{{ 'a' }}{{ 0x1F }}{{ 1e3 }}{{ 017 }}", out: "s\téAraw\\n421.5true9731100015" },
  { src: "{{ print nil }}", out: "<nil>" },
  { src: "{{ if .A }}A{{ else if .B }}B{{ else }}C{{ end }}", data: {"A":"","B":[1]}, out: "B" },
  { src: "{{ if .A }}A{{ else if .B }}B{{ else }}C{{ end }}", data: {"A":0,"B":[]}, out: "C" },
  { src: "{{ with .A }}[{{ . }}]{{ else }}none{{ end }}", data: {"A":"v"}, out: "[v]" },
  { src: "{{ if and .A .B }}both{{ end }}{{ if or .A .B }}either{{ end }}{{ if not .A }}notA{{ end }}", data: {"A":false,"B":"x"}, out: "eithernotA" },
  { src: "{{ and 1 0 2 }}|{{ or 0 \"\" \"z\" }}|{{ and 1 2 }}|{{ or 0 \"\" }}", out: "0|z|2|" },
  { src: "{{ if .M }}nonempty{{ else }}empty{{ end }}", data: {"M":{}}, out: "empty" },
  { src: "{{ range .L }}<{{ . }}>{{ end }}", data: {"L":["a","b"]}, out: "<a><b>" },
  { src: "{{ range $i, $e := .L }}{{ $i }}={{ $e }};{{ end }}", data: {"L":["a","b"]}, out: "0=a;1=b;" },
  { src: "{{ range $e := .L }}{{ $e }}{{ end }}", data: {"L":[1,2]}, out: "12" },
  { src: "{{ range .L }}x{{ else }}empty{{ end }}", data: {"L":[]}, out: "empty" },
  { src: "{{ range .Nil }}x{{ else }}nil-empty{{ end }}", data: {}, out: "nil-empty" },
  { src: "{{ range $k, $v := .M }}{{ $k }}:{{ $v }},{{ end }}", data: {"M":{"b":2,"a":1,"c":3}}, out: "a:1,b:2,c:3," },
  { src: "{{ range $i, $m := .Messages }}{{ if eq $m.Role \"user\" }}U{{ $i }}{{ else }}A{{ end }}{{ if eq (len $.Messages) 2 }}last{{ end }}{{ end }}", data: {"Messages":[{"Role":"user"},{"Role":"assistant"}]}, out: "U0lastAlast" },
  { src: "{{ $n := 0 }}{{ range .L }}{{ $n = . }}{{ end }}{{ $n }}", data: {"L":[1,2,3]}, out: "3" },
  { src: "{{ range .L }}{{ $x := . }}{{ $x }}{{ end }}", data: {"L":[1,2]}, out: "12" },
  { src: "{{ len .S }} {{ len .L }} {{ len .M }} {{ len \"héllo\" }}", data: {"S":"abc","L":[1,2],"M":{"a":1}}, out: "3 2 1 6" },
  { src: "{{ index .L 1 }} {{ index .M \"k\" }} {{ index .M \"zz\" }} {{ index .N 0 1 }} {{ index \"abc\" 1 }}", data: {"L":["a","b"],"M":{"k":"v"},"N":[[1,2]]}, out: "b v <no value> 2 98" },
  { src: "{{ slice .L 1 }} {{ slice .L 1 2 }} {{ slice \"hello\" 1 3 }} {{ slice .L }}", data: {"L":[1,2,3]}, out: "[2 3] [2] el [1 2 3]" },
  { src: "{{ eq 1 1 }} {{ eq \"a\" \"b\" \"a\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1 2 }}", out: "true true true true true true false" },
  { src: "{{ eq .Nil \"x\" }} {{ eq .Nil .Nil2 }}", data: {}, out: "false true" },
  { src: "{{ print 1 2 \"a\" \"b\" 3 true }}|{{ println 1 \"a\" }}|{{ print }}", out: "1 2ab3 true|1 a\n|" },
  { src: "{{ printf \"%d %s %v %q %t %x %X %o %c %5d|%-5d|%05d %+d\" 10 \"s\" 1.5 \"q\" true 255 255 8 65 42 42 42 42 }}", out: "10 s 1.5 \"q\" true ff FF 10 A    42|42   |00042 +42" },
  { src: "{{ printf \"%.2f %8.3f %e %g %g %g %G %v %v %v\" 3.14159 2.5 123456.789 0.0001 1e-5 1234567.0 1e21 1000000.5 0.1 100000.0 }}", out: "3.14    2.500 1.234568e+05 0.0001 1e-05 1.234567e+06 1E+21 1.0000005e+06 0.1 100000" },
  { src: "{{ printf \"%s %d\" 1 \"x\" }}|{{ printf \"%d\" }}|{{ printf \"%d\" 1 2 }}|{{ printf \"%z\" 1 }}|{{ printf \"100%%\" }}", out: "%!s(int=1) %!d(string=x)|%!d(MISSING)|1%!(EXTRA int=2)|%!z(int=1)|100%" },
  { src: "{{ printf \"%T %T %T %T %T\" 1 1.5 \"s\" true .L }}", data: {"L":[1]}, out: "int float64 string bool []interface {}" },
  { src: "{{ html \"<a href='x'>&\\\"</a>\" }}|{{ js \"a'b\\\"c<d>&=\\\\ é\\u2028\" }}|{{ urlquery \"a b&c=d/é~!*\" }}", out: "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;|a\\'b\\\"c\\u003Cd\\u003E\\u0026\\u003D\\\\ é\\u2028|a+b%26c%3Dd%2F%C3%A9~%21%2A" },
  { src: "{{ .L }} {{ .M }} {{ .E }} {{ .F }}", data: {"L":[1,"x",[2,3]],"M":{"b":[1],"a":"s"},"E":[],"F":{}}, out: "[1 x [2 3]] map[a:s b:[1]] [] map[]" },
  { src: "{{ \"x\" | printf \"%s-%s\" \"y\" }}|{{ .A | len }}|{{ 3 | printf \"%d\" }}", data: {"A":"four"}, out: "y-x|4|3" },
  { src: "{{ json .V }}", data: {"V":{"z":1,"a":"<tag>&","n":null,"l":[1.5,"x"],"e":" \n\t\u0001"}}, out: "{\"a\":\"\\u003ctag\\u003e\\u0026\",\"e\":\"\\u2028\\n\\t\\u0001\",\"l\":[1.5,\"x\"],\"n\":null,\"z\":1}" },
  { src: "{{ define \"T\" }}[{{ . }}]{{ end }}{{ template \"T\" .A }}{{ template \"T\" \"lit\" }}", data: {"A":"a"}, out: "[a][lit]" },
  { src: "{{ block \"B\" .A }}blk:{{ . }}{{ end }}", data: {"A":"a"}, out: "blk:a" },
  { src: "{{ define \"T\" }}{{ $ }}{{ end }}{{ $x := 1 }}{{ template \"T\" 5 }}", out: "5" },
  { src: "{{ len 3 }}", err: "template: :1:3: executing \"\" at <len 3>: error calling len: len of type int" },
  { src: "{{ index .L 5 }}", data: {"L":[1]}, err: "template: :1:3: executing \"\" at <index .L 5>: error calling index: index out of range: 5" },
  { src: "{{ template \"nope\" }}", err: "template: :1:12: executing \"\" at <{{template \"nope\"}}>: template \"nope\" not defined" },
  { src: "{{ range .S }}{{ end }}", data: {"S":"str"}, err: "template: :1:9: executing \"\" at <.S>: range can't iterate over str" },
  { src: "{{ nil }}", err: "template: :1:3: executing \"\" at <nil>: nil is not a command" },
  { src: "{{ \"x\" 1 }}", err: "template: :1:3: executing \"\" at <\"x\">: can't give argument to non-function \"x\"" },
  { src: "{{ not 1 2 }}", err: "template: :1:3: executing \"\" at <not>: wrong number of args for not: want 1 got 2" },
  { src: "{{ and }}", err: "template: :1:3: executing \"\" at <and>: wrong number of args for and: want at least 1 got 0" },
  { src: "{{ eq 1 }}", err: "template: :1:3: executing \"\" at <eq 1>: error calling eq: missing argument for comparison" },
  { src: "{{ .A 1 }}", data: {"A":"x"}, err: "template: :1:3: executing \"\" at <.A>: A is not a method but has arguments" },
  { src: "{{ printf 1 }}", err: "template: :1:10: executing \"\" at <1>: expected string; found 1" },
  { src: "{{ .Prompt }", err: "template: :1: unexpected \"}\" in operand" },
  { src: "{{ .Prompt ", err: "template: :1: unclosed action" },
  { src: "text\n{{ .Prompt\n\n", err: "template: :4: unclosed action started at :2" },
  { src: "{{ undefinedFn 1 }}", err: "template: :1: function \"undefinedFn\" not defined" },
  { src: "{{ if .A }}x", err: "template: :1: unexpected EOF" },
  { src: "{{ if .A }}x{{ else }}y{{ else }}z{{ end }}", err: "template: :1: expected end; found {{else}}" },
  { src: "{{ end }}", err: "template: :1: unexpected {{end}}" },
  { src: "a\n{{ else }}", err: "template: :2: unexpected {{else}}" },
  { src: "{{ }}", err: "template: :1: missing value for command" },
  { src: "{{ if }}{{ end }}", err: "template: :1: missing value for if" },
  { src: "{{ .A | \"s\" }}", err: "template: :1: non executable command in pipeline stage 2" },
  { src: "{{ $u }}", err: "template: :1: undefined variable \"$u\"" },
  { src: "{{ break }}", err: "template: :1: {{break}} outside {{range}}" },
  { src: "{{ range .L }}{{ break 1 }}{{ end }}", err: "template: :1: unexpected \"1\" in {{break}}" },
  { src: "{{ (1 }}", err: "template: :1: unclosed left paren" },
  { src: "{{ \"unterminated }}", err: "template: :1: unterminated quoted string" },
  { src: "{{ `raw", err: "template: :1: unterminated raw quoted string" },
  { src: "{{ 1a }}", err: "template: :1: bad number syntax: \"1a\"" },
  { src: "{{ .A.1 }}", err: "template: :1: unexpected \".1\" in operand" },
  { src: "{{ /* c */ }}", err: "template: :1: unexpected \"/\" in command" },
  { src: "{{/* unclosed", err: "template: :1: unclosed comment" },
  { src: "{{/* c */ x }}", err: "template: :1: comment ends before closing delimiter" },
  { src: "{{ $x := 1 2 := 3 }}", err: "template: :1: unexpected \":=\" in operand" },
  { src: "{{ range $a, $b, $c := .L }}{{ end }}", err: "template: :1: too many declarations in range" },
  { src: "{{ with $x, $y := 1 }}{{ end }}", err: "template: :1: too many declarations in with" },
  { src: "{{ define \"a\" }}x{{ end }}{{ define \"a\" }}y{{ end }}", err: "template: :1: template: multiple definition of template \"a\"" },
  { src: "{{ define \"a\" }}x", err: "template: :1: unexpected EOF" },
  { src: "{{ template .X }}", err: "template: :1: unexpected \".X\" in template clause" },
  { src: "{{ . ^ }}", err: "template: :1: unexpected \"^\" in operand" },
  { src: "{{ \"abc\".X }}", err: "template: :1: unexpected . after term \"\\\"abc\\\"\"" },
  { src: "{{ 'ab' }}", err: "template: :1: malformed character constant: 'ab'" },
  { src: "{{ \"\\q\" }}", err: "template: :1: invalid syntax" },
  { src: "{{ .A \n | len }}", data: {"A":"xy"}, out: "2" },
  { src: "{{ if .A }}{{ else if .B }}{{ else }}{{ end }}{{ range .X }}{{ else if .Y }}{{ end }}", err: "template: :1: unexpected <if> in input" },
  { src: "{{ $x := 1 }}{{ if true }}{{ $y := 2 }}{{ end }}{{ $y }}", err: "template: :1: undefined variable \"$y\"" },
  { src: "{{ é }}", err: "template: :1: function \"é\" not defined" },
  { src: "{{ .Tools | printf \"%s\" | len }}", data: {"Tools":"abc"}, out: "3" },

];

describe("template engine: parity with Go text/template", () => {
  for (const c of goParity) {
    it(JSON.stringify(c.src), () => {
      const got = run(c.src, asGoMaps(c.data ?? null));
      if (c.err !== undefined) assert.equal(got.err, c.err);
      else assert.deepEqual(got, { out: c.out });
    });
  }
});

describe("template engine: whitespace trimming", () => {
  const cases: [string, string][] = [
    ["a \t\r\n {{- 1 }} b", "a1 b"],
    ["a {{ 1 -}} \t\r\n b", "a 1b"],
    ["a\n\n{{- /* gone */ -}}\n\nb", "ab"],
    ["{{- 1 -}}", "1"],
    // "{{-3}}" is the number -3, not a trim marker: the marker needs a space after it.
    ["x {{-3}} y", "x -3 y"],
    ["x {{ 3 -}}{{- 4 }} y", "x 34 y"],
    ["<|im_start|>{{ .R }}\n{{- if .C }}\n{{ .C }}{{ end }}<|im_end|>", "<|im_start|>user\nhi<|im_end|>"],
  ];
  for (const [src, want] of cases) {
    it(JSON.stringify(src), () => assert.equal(parseTemplate(src).execute({ R: "user", C: "hi" }), want));
  }
});

describe("template engine: parse errors", () => {
  const cases: [string, string][] = [
    ["{{ .Prompt }", 'template: :1: unexpected "}" in operand'],
    ["a\nb\n{{ .X }", 'template: :3: unexpected "}" in operand'],
    ["{{ .Prompt ", "template: :1: unclosed action"],
    ["line\n{{ .Prompt\n\n", "template: :4: unclosed action started at :2"],
    ["{{ toUpper .Prompt }}", 'template: :1: function "toUpper" not defined'],
    ["{{ if .Messages }}\n{{ range .Messages }}x{{ end }}", "template: :2: unexpected EOF"],
    ["{{ end }}", "template: :1: unexpected {{end}}"],
    ["{{ .A | 1 }}", "template: :1: non executable command in pipeline stage 2"],
    ["{{ }}", "template: :1: missing value for command"],
    ["{{ if .A }}{{ else if }}{{ end }}", "template: :1: missing value for if"],
    ["{{ $undefined }}", 'template: :1: undefined variable "$undefined"'],
    ["{{ break }}", "template: :1: {{break}} outside {{range}}"],
    ["{{ range $a, $b, $c := .L }}{{ end }}", "template: :1: too many declarations in range"],
    ["{{ 1) }}", "template: :1: unexpected right paren U+0029 ')'"],
    ["{{ `raw", "template: :1: unterminated raw quoted string"],
    ["{{ (((1 }}", "template: :1: unclosed left paren"],
  ];
  for (const [src, want] of cases) {
    it(JSON.stringify(src), () => assert.throws(() => parseTemplate(src), (e: unknown) => e instanceof TemplateError && e.message === want));
  }

  it("bounds nesting of parenthesised pipelines", () => {
    const deep = "{{ " + "(".repeat(2000) + "1" + ")".repeat(2000) + " }}";
    assert.throws(() => parseTemplate(deep), /max expression depth exceeded/);
  });
});

describe("template engine: JavaScript data", () => {
  it("reads plain-object fields, calls methods, and prints Stringers", () => {
    const data = {
      User: { Name: "ada", Greet: (greeting: string) => `${greeting}, ada` },
      Args: Object.defineProperty({ b: 1, a: 2 }, "String", { value: () => "custom", enumerable: false }),
    };
    assert.equal(parseTemplate('{{ .User.Name }}|{{ .User.Greet "hi" }}|{{ .Args }}|{{ .Args.a }}').execute(data), "ada|hi, ada|custom|2");
  });

  it("treats a missing field as no value (Go's map behaviour), even through a chain", () => {
    const t = parseTemplate("{{ .Prompt }}|{{ .A.B.C }}|{{ if .Prompt }}x{{ else }}empty{{ end }}|{{ print .Prompt }}");
    assert.equal(t.execute({ A: {} }), "<no value>|<no value>|empty|<nil>");
  });

  it("ranges over plain objects in sorted key order and over integers", () => {
    assert.equal(parseTemplate("{{ range $k, $v := . }}{{ $k }}{{ $v }}{{ end }}").execute({ b: 2, a: 1 }), "a1b2");
    assert.equal(parseTemplate("{{ range 3 }}{{ . }}{{ end }}").execute(null), "012");
  });

  it("supports else with and parenthesised chains", () => {
    const t = parseTemplate("{{ with .A }}a{{ else with .B }}b={{ . }}{{ end }}|{{ (index .L 0).N }}");
    assert.equal(t.execute({ B: 7, L: [{ N: "n" }] }), "b=7|n");
  });

  it("compares JS numbers as one kind and strings by code point", () => {
    assert.equal(parseTemplate('{{ eq 1 1.0 }} {{ lt "é" "😀" }} {{ lt "\uffff" "😀" }}').execute(null), "true true true");
  });

  it("reports execution errors with Go's location and context", () => {
    assert.throws(
      () => parseTemplate("{{ define \"T\" }}\n  {{ len . }}{{ end }}{{ template \"T\" 3 }}").execute(null),
      (e: unknown) => e instanceof TemplateError && e.message === 'template: :2:5: executing "T" at <len .>: error calling len: len of type int',
    );
    assert.throws(() => parseTemplate("{{ .A.B }}").execute({ A: "s" }), /can't evaluate field B in type string/);
  });

  it("stops a template whose output grows without bound", () => {
    const t = parseTemplate("{{ range 100000 }}0123456789{{ end }}");
    assert.throws(() => t.execute(null, { maxOutputLength: 1000 }), /output exceeds 1000 characters/);
  });

  it("stops runaway template recursion", () => {
    const t = parseTemplate('{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}');
    assert.throws(() => t.execute(null), /exceeded maximum template depth/);
  });
});

describe("template engine: printf and json", () => {
  const printf: [string, string][] = [
    ['{{ printf "%s|%d|%v|%q" "a" 42 true "q\\"" }}', 'a|42|true|"q\\""'],
    ['{{ printf "%5s|%-5s|%05d|%+d|%x|%X|%o|%b|%c|%U" "ab" "ab" 42 3 255 255 8 5 65 65 }}', "   ab|ab   |00042|+3|ff|FF|10|101|A|U+0041"],
    ['{{ printf "%.2f|%8.3f|%e|%g|%g|%v" 3.14159 2.5 123456.789 0.0001 1e-05 1234567.5 }}', "3.14|   2.500|1.234568e+05|0.0001|1e-05|1.2345675e+06"],
    ['{{ printf "%d %s" }}|{{ printf "%d" 1 2 }}|{{ printf "%d" "x" }}', '%!d(MISSING) %!s(MISSING)|1%!(EXTRA int=2)|%!d(string=x)'],
    ['{{ printf "%v|%v|%v" .L .M nil }}', "[1 a]|map[a:1 b:[2]]|<nil>"],
  ];
  for (const [src, want] of printf) {
    it(src, () => assert.equal(parseTemplate(src).execute({ L: [1, "a"], M: { b: [2], a: 1 } }), want));
  }

  it("json escapes like Go and orders Map keys", () => {
    assert.equal(goJSON({ b: "<a & b>\u2028", a: [1, 2.5, null, true], c: "\b\f\n\u0001" }), '{"b":"\\u003ca \\u0026 b\\u003e\\u2028","a":[1,2.5,null,true],"c":"\\b\\f\\n\\u0001"}');
    assert.equal(goJSON(new Map<string, unknown>([["z", 1], ["a", new Uint8Array([1, 2, 3])]])), '{"a":"AQID","z":1}');
    assert.equal(parseTemplate("{{ json .X }}").execute({ X: NaN }), "");
  });
});
