import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { goJSON } from "@corral/shared/gojson";
import {
  DEFAULT_OPTIONS,
  DEPRECATED_PARAMETERS,
  OptionError,
  PARAMETER_TYPES,
  ParameterError,
  formatParams,
  optionsFromMap,
  parameterType,
  parametersFromCommands,
  parseModelfile,
} from "@corral/shared/modelfile/index";

describe("the parameter table", () => {
  it("lists every option with its type", () => {
    assert.deepEqual(Object.keys(PARAMETER_TYPES).sort(), [
      "draft_num_predict", "frequency_penalty", "main_gpu", "min_p", "num_batch", "num_ctx", "num_gpu", "num_keep",
      "num_predict", "num_thread", "presence_penalty", "repeat_last_n", "repeat_penalty", "seed", "stop", "temperature",
      "top_k", "top_p", "typical_p", "use_mmap",
    ]);
    assert.equal(parameterType("temperature"), "float");
    assert.equal(parameterType("num_ctx"), "int");
    assert.equal(parameterType("use_mmap"), "bool");
    assert.equal(parameterType("stop"), "string[]");
    assert.equal(parameterType("constructor"), undefined);
    assert.equal(DEPRECATED_PARAMETERS.length, 9);
    assert.ok(DEPRECATED_PARAMETERS.includes("mirostat"));
  });

  it("DEFAULT_OPTIONS holds Ollama's defaults", () => {
    assert.equal(DEFAULT_OPTIONS.top_k, 40);
    assert.equal(DEFAULT_OPTIONS.top_p, 0.9);
    assert.equal(DEFAULT_OPTIONS.temperature, 0.8);
    assert.equal(DEFAULT_OPTIONS.num_predict, -1);
    assert.equal(DEFAULT_OPTIONS.repeat_last_n, 64);
    assert.equal(DEFAULT_OPTIONS.main_gpu, undefined);
    assert.equal(DEFAULT_OPTIONS.use_mmap, undefined);
  });
});

describe("formatParams", () => {
  it("converts each type", () => {
    assert.deepEqual(
      formatParams({
        temperature: ["0.123456789"],
        top_k: ["+40"],
        num_ctx: ["008192"],
        seed: ["-1"],
        use_mmap: ["F"],
        main_gpu: ["1"],
        stop: ["<|im_end|>", "###"],
      }),
      { temperature: 0.12345679, top_k: 40, num_ctx: 8192, seed: -1, use_mmap: false, main_gpu: 1, stop: ["<|im_end|>", "###"] },
    );
  });

  it("float values take the float32 shortest form", () => {
    const out = formatParams({ top_p: ["0.7"], min_p: ["1e-7"], repeat_penalty: ["1.1"] });
    assert.equal(goJSON(out), '{"top_p":0.7,"min_p":1e-7,"repeat_penalty":1.1}');
    assert.equal(formatParams({ temperature: ["0x1p-2"] }).temperature, 0.25);
  });

  it("keeps 64-bit integers exact", () => {
    assert.equal(formatParams({ seed: ["9223372036854775807"] }).seed, 9223372036854775807n);
  });

  const errors: Array<[Record<string, string[]>, string]> = [
    [{ num_ctx: ["4.5"] }, "invalid int value [4.5]"],
    [{ num_ctx: ["1e3"] }, "invalid int value [1e3]"],
    [{ num_ctx: ["9223372036854775808"] }, "invalid int value [9223372036854775808]"],
    [{ num_ctx: ["1_000"] }, "invalid int value [1_000]"],
    [{ top_k: [""] }, "invalid int value []"],
    [{ temperature: ["warm"] }, "invalid float value [warm]"],
    [{ temperature: ["1e39"] }, "invalid float value [1e39]"],
    [{ temperature: ["inf"] }, "invalid float value [inf]"],
    [{ use_mmap: ["yes"] }, "invalid bool value [yes]"],
    [{ numa: ["true"] }, "unknown parameter 'numa'"],
    [{ num_gqa: ["8"] }, "unknown parameter 'num_gqa'"],
    [{ mirostat: ["1"] }, "unknown parameter 'mirostat'"],
    [{ "": ["temperature 0.5"] }, "unknown parameter ''"],
  ];
  for (const [input, message] of errors) {
    it(`${JSON.stringify(input)} → ${message}`, () => {
      assert.throws(() => formatParams(input), (err: unknown) => {
        assert.ok(err instanceof ParameterError);
        assert.equal(err.message, message);
        assert.equal(err.reason, message);
        assert.equal(err.parameter, Object.keys(input)[0]);
        return true;
      });
    });
  }

  it("reads only the first value of a scalar but prints the whole list in the error", () => {
    assert.equal(formatParams({ temperature: ["0.5", "junk"] }).temperature, 0.5);
    assert.throws(() => formatParams({ num_ctx: ["x", "y"] }), { message: "invalid int value [x y]" });
  });
});

describe("parametersFromCommands", () => {
  it("accumulates stop values, overwrites the rest, warns about deprecated names", () => {
    const cmds = parseModelfile(
      [
        "FROM llama3",
        "SYSTEM hi",
        "PARAMETER stop <|start_header_id|>",
        "PARAMETER temperature 0.9",
        "PARAMETER mirostat 2",
        "PARAMETER stop <|eot_id|>",
        "PARAMETER temperature 0.2",
        "MESSAGE user hello",
      ].join("\n"),
    );
    const { parameters, warnings } = parametersFromCommands(cmds);
    assert.deepEqual(parameters, { stop: ["<|start_header_id|>", "<|eot_id|>"], temperature: 0.2 });
    assert.deepEqual(warnings, [{ parameter: "mirostat", line: 5, message: "parameter mirostat is deprecated" }]);
  });

  it("names the Modelfile line of a bad value", () => {
    const cmds = parseModelfile("FROM x\n\nPARAMETER num_ctx big\n");
    assert.throws(() => parametersFromCommands(cmds), (err: unknown) => {
      assert.ok(err instanceof ParameterError);
      assert.equal(err.line, 3);
      assert.equal(err.reason, "invalid int value [big]");
      assert.equal(err.message, "(line 3): invalid int value [big]");
      return true;
    });
  });

  it("produces the params blob from a Modelfile", () => {
    const cmds = parseModelfile("FROM x\nPARAMETER temperature 0.6\nPARAMETER top_k 10\nPARAMETER top_p 0.7\nPARAMETER stop <|endoftext|>\n");
    const blob = goJSON(parametersFromCommands(cmds).parameters, { sortKeys: true, newline: true });
    assert.equal(createHash("sha256").update(blob).digest("hex"), "12f58bb75cb3042d69a7e013ab87fb3c3c7088f50ddc62f0c77bd332f0d44d35");
  });
});

describe("optionsFromMap (FromMap)", () => {
  it("applies typed values over the defaults without touching them", () => {
    const { options, warnings } = optionsFromMap({ temperature: 0.123456789, num_ctx: 8192.9, seed: -3.7, use_mmap: false, stop: ["\n"], top_p: null });
    assert.equal(options.temperature, 0.12345679);
    assert.equal(options.num_ctx, 8192);
    assert.equal(options.seed, -3);
    assert.equal(options.use_mmap, false);
    assert.deepEqual(options.stop, ["\n"]);
    assert.equal(options.top_p, DEFAULT_OPTIONS.top_p);
    assert.equal(options.top_k, 40);
    assert.deepEqual(warnings, []);
    assert.deepEqual(DEFAULT_OPTIONS.stop, []);
  });

  it("layers: model params then request options, lists replaced whole", () => {
    const model = optionsFromMap({ stop: ["a", "b"], temperature: 0.5 }).options;
    const req = optionsFromMap({ stop: ["c"] }, model).options;
    assert.deepEqual(req.stop, ["c"]);
    assert.equal(req.temperature, 0.5);
  });

  it("ignores unknown and deprecated keys with a warning", () => {
    const { options, warnings } = optionsFromMap({ numa: true, mirostat: 1, top_k: 5 });
    assert.equal(options.top_k, 5);
    assert.deepEqual(warnings, ["invalid option provided: numa", "invalid option provided: mirostat"]);
  });

  const typeErrors: Array<[Record<string, unknown>, string]> = [
    [{ num_ctx: "4096" }, 'option "num_ctx" must be of type integer'],
    [{ num_ctx: true }, 'option "num_ctx" must be of type integer'],
    [{ temperature: "0.5" }, 'option "temperature" must be of type float32'],
    [{ use_mmap: 1 }, 'option "use_mmap" must be of type boolean'],
    [{ stop: "###" }, 'option "stop" must be of type array'],
    [{ stop: ["a", 1] }, 'option "stop" must be of an array of strings'],
  ];
  for (const [input, message] of typeErrors) {
    it(`${JSON.stringify(input)} → ${message}`, () => {
      assert.throws(() => optionsFromMap(input), (err: unknown) => err instanceof OptionError && err.message === message);
    });
  }
});
