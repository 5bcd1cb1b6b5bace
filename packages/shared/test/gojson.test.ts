import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { compareByCodePoint, float32String, goJSON, parseFloat32Decimal, toFloat32Number } from "@corral/shared/gojson";

const sha256 = (s: string): string => createHash("sha256").update(s, "utf8").digest("hex");

describe("goJSON reproduces the digests of the config and params blobs", () => {
  it("params blob: sorted keys, HTML-escaped, trailing newline", () => {
    const text = goJSON({ top_p: 0.7, temperature: 0.6, stop: ["<|endoftext|>"], top_k: 10 }, { sortKeys: true, newline: true });
    assert.equal(text, '{"stop":["\\u003c|endoftext|\\u003e"],"temperature":0.6,"top_k":10,"top_p":0.7}\n');
    assert.equal(sha256(text), "12f58bb75cb3042d69a7e013ab87fb3c3c7088f50ddc62f0c77bd332f0d44d35");
  });

  it("messages blob", () => {
    const messages = [
      { role: "assistant", content: "What is my purpose?" },
      { role: "user", content: "You run tests." },
      { role: "assistant", content: "Oh, my god." },
    ];
    assert.equal(sha256(goJSON(messages, { newline: true })), "298baeaf6928a60cf666d88d64a1ba606feb43a2865687c39e40652e407bffc4");
  });

  it("config blob (struct order kept)", () => {
    const config = {
      model_format: "gguf",
      model_family: "test",
      model_families: ["test"],
      model_type: "0",
      file_type: "unknown",
      architecture: "amd64",
      os: "linux",
    };
    const text = goJSON(config, { newline: true });
    assert.equal(Buffer.byteLength(text), 147);
    assert.equal(sha256(text), "99759ad5b91e723db0393d698ffbb448b1b7df5ff6377a108c49254583b1bc8c");
  });
});

describe("goJSON strings", () => {
  it("escapes <, >, & and the JS line separators", () => {
    assert.equal(goJSON("<a href='x'>&</a>\u2028\u2029"), '"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e\\u2028\\u2029"');
  });

  it("uses short escapes for \\n \\r \\t \\b \\f and \\u00xx for other controls, leaves DEL alone", () => {
    assert.equal(goJSON('"\\\n\r\t\b\f\u0000\u001f\u007f'), '"\\"\\\\\\n\\r\\t\\b\\f\\u0000\\u001f\u007f"');
  });

  it("keeps non-ASCII as is and writes lone surrogates as \\ufffd", () => {
    assert.equal(goJSON("é日😀"), '"é日😀"');
    assert.equal(goJSON("a\ud800b\udc00"), '"a\\ufffdb\\ufffd"');
  });
});

describe("goJSON values", () => {
  it("keeps insertion order unless sortKeys, which sorts recursively by code point", () => {
    const v = { b: 1, a: { d: [{ z: 1, y: 2 }], c: true } };
    assert.equal(goJSON(v), '{"b":1,"a":{"d":[{"z":1,"y":2}],"c":true}}');
    assert.equal(goJSON(v, { sortKeys: true }), '{"a":{"c":true,"d":[{"y":2,"z":1}]},"b":1}');
    // U+FF5E sorts before U+1F600 in UTF-8 byte order, though not in UTF-16 code unit order.
    assert.equal(goJSON({ "😀": 1, "～": 2 }, { sortKeys: true }), '{"～":2,"😀":1}');
    assert.ok(compareByCodePoint("～", "😀") < 0);
  });

  it("writes a Map with sorted keys, as a Go map", () => {
    assert.equal(goJSON(new Map<string, number>([["b", 1], ["a", 2]])), '{"a":2,"b":1}');
  });

  it("writes numbers like Go float64 and bigints exactly", () => {
    assert.equal(goJSON([0.1, 1e21, 1e-7, 123456789, -0.5, 9007199254740993n]), "[0.1,1e+21,1e-7,123456789,-0.5,9007199254740993]");
  });

  it("writes null, booleans and base64 bytes; skips undefined fields", () => {
    assert.equal(goJSON({ a: null, b: false, c: undefined, d: new Uint8Array([0, 1, 2, 255]) }), '{"a":null,"b":false,"d":"AAEC/w=="}');
    assert.equal(goJSON([undefined]), "[null]");
  });

  it("appends a newline only when asked", () => {
    assert.equal(goJSON([], { newline: true }), "[]\n");
    assert.equal(goJSON({}), "{}");
  });

  it("refuses what Go refuses", () => {
    assert.throws(() => goJSON(NaN), /unsupported value: NaN/);
    assert.throws(() => goJSON({ x: Infinity }), /unsupported value/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => goJSON(cyclic), /cyclic/);
    assert.throws(() => goJSON(undefined), TypeError);
  });
});

describe("float32", () => {
  // Expected values are Go's json.Marshal(float32(x)).
  const cases: Array<[number, string]> = [
    [0.123456789, "0.12345679"],
    [0.7, "0.7"],
    [0.6, "0.6"],
    [0.1, "0.1"],
    [1 / 3, "0.33333334"],
    [16777217, "16777216"],
    [3.4e38, "3.4e+38"],
    [1e-7, "1e-7"],
    [1e-45, "1e-45"],
    [2 ** -12, "0.00024414062"],
    [-2.5, "-2.5"],
    [0, "0"],
  ];
  for (const [x, want] of cases) {
    it(`float32String(${x}) = ${want}`, () => {
      assert.equal(float32String(x), want);
      assert.equal(JSON.stringify(toFloat32Number(x)), want);
      assert.equal(Math.fround(toFloat32Number(x)), Math.fround(x));
    });
  }

  it("overflow and NaN are not encodable", () => {
    assert.equal(toFloat32Number(1e39), Infinity);
    assert.throws(() => float32String(1e39), /unsupported value/);
    assert.ok(Number.isNaN(toFloat32Number(NaN)));
  });

  it("parses decimal text straight to float32", () => {
    assert.equal(parseFloat32Decimal("0.1"), Math.fround(0.1));
    assert.equal(parseFloat32Decimal("-.5e1"), -5);
    assert.equal(parseFloat32Decimal("5."), 5);
    assert.equal(parseFloat32Decimal("3.4028235e38"), 3.4028234663852886e38);
    assert.equal(parseFloat32Decimal("3.5e38"), Infinity);
    assert.equal(parseFloat32Decimal("1e-50"), 0);
    assert.equal(parseFloat32Decimal("abc"), undefined);
    assert.equal(parseFloat32Decimal("1e"), undefined);
    assert.equal(parseFloat32Decimal("."), undefined);
    // Halfway between 1 and the next float32 (1 + 2^-23): ties to even, i.e. 1. One digit more rounds up.
    assert.equal(parseFloat32Decimal("1.000000059604644775390625"), 1);
    assert.equal(parseFloat32Decimal("1.000000059604644775390626"), 1 + 2 ** -23);
  });
});
