// The manifest module's bounds on hostile input: nesting is measured by one pass over the bytes
// (outside strings) before JSON.parse builds anything, and the number of layers is capped, so a
// 4 MiB manifest nested two million levels deep, or listing tens of thousands of layers, is
// refused at once by the registry's PUT and by the daemon's pull alike.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import {
  MAX_MANIFEST_BYTES,
  MAX_MANIFEST_DEPTH,
  MAX_MANIFEST_LAYERS,
  ManifestError,
  MediaType,
  jsonNestingDepth,
  parseConfig,
  parseManifest,
} from "@corral/shared/manifest";

const digest = `sha256:${"ab".repeat(32)}`;
const layer = { mediaType: MediaType.template, digest, size: 3 };
const manifestWith = (extra: string, layers: unknown[] = [layer]): string =>
  `{"schemaVersion":2,"mediaType":"${MediaType.manifestV2}","config":${JSON.stringify({ mediaType: MediaType.config, digest, size: 3 })},"layers":${JSON.stringify(layers)}${extra}}`;
/** `{"a":{"a":…}}` with `depth` levels of objects. */
const nestedObjects = (depth: number): string => '{"a":'.repeat(depth - 1) + "{}" + "}".repeat(depth - 1);
/** `[[…]]` with `depth` levels of arrays. */
const nestedArrays = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);

/** Lengths of the texts JSON.parse is handed while the spy is installed. */
let parsed: number[] = [];
const realParse = JSON.parse;
beforeEach(() => {
  parsed = [];
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    parsed.push(String(text).length);
    return realParse(text, reviver);
  }) as typeof JSON.parse;
});
afterEach(() => {
  JSON.parse = realParse;
});

describe("jsonNestingDepth", () => {
  it("counts arrays and objects, not brackets inside strings", () => {
    assert.equal(jsonNestingDepth('{"a":[1,{"b":[]}]}', 100), 4);
    assert.equal(jsonNestingDepth('"[[[[{{{{"', 100), 0);
    assert.equal(jsonNestingDepth('{"x":"]]]}}}[[[[{{{{"}', 100), 1);
    assert.equal(jsonNestingDepth("12", 100), 0);
  });

  it("an escaped quote does not end a string; an escaped backslash before a quote does", () => {
    assert.equal(jsonNestingDepth('{"x":"\\"[[[[\\""}', 100), 1, "\\\" stays inside the string");
    assert.equal(jsonNestingDepth('{"x":"\\\\",  "y":[[[]]]}', 100), 4, "\\\\ ends with the quote after it");
    assert.equal(jsonNestingDepth('["\\\\\\"[["]', 100), 1, "\\\\\\\" is a backslash, then a quote, both inside");
    assert.equal(jsonNestingDepth('["\\u005b\\u005b"]', 100), 1, "escaped brackets are text");
  });

  it("multi-byte text is skipped like any other", () => {
    assert.equal(jsonNestingDepth('{"é😀[":["ü"]}', 100), 2);
  });

  it("stops at the first level past the limit", () => {
    assert.equal(jsonNestingDepth(nestedArrays(10), 10), 10);
    assert.equal(jsonNestingDepth(nestedArrays(11), 10), 11);
    assert.equal(jsonNestingDepth(nestedArrays(1_000_000), 10), 11, "answers limit + 1, however deep it goes on");
  });
});

describe("parseManifest bounds", () => {
  it("exactly the deepest nesting allowed is accepted, one more level is refused", () => {
    // The manifest object itself is level 1: the annotation adds the rest.
    const atLimit = manifestWith(`,"annotations":${nestedObjects(MAX_MANIFEST_DEPTH - 1)}`);
    assert.equal(jsonNestingDepth(atLimit, 1000), MAX_MANIFEST_DEPTH);
    assert.equal(parseManifest(atLimit).layers.length, 1);
    const over = manifestWith(`,"annotations":${nestedObjects(MAX_MANIFEST_DEPTH)}`);
    assert.throws(() => parseManifest(over), (e: unknown) => e instanceof ManifestError && /nested more than 32 levels deep/.test(e.message));
    const overArrays = manifestWith(`,"x":${nestedArrays(MAX_MANIFEST_DEPTH)}`);
    assert.throws(() => parseManifest(overArrays), ManifestError);
  });

  it("brackets and escaped quotes inside strings do not count", () => {
    const noisy = manifestWith(`,"annotations":{"note":"${"[{".repeat(5000)}\\"${"[".repeat(100)}\\\\"}`);
    assert.equal(parseManifest(noisy).layers.length, 1);
  });

  it("a 4 MiB manifest nested two million levels deep is refused before JSON.parse sees it", () => {
    const n = 2_000_000;
    const deep = `{"schemaVersion":2,"x":${"[".repeat(n)}${"]".repeat(n)}}`;
    assert.ok(Buffer.byteLength(deep) <= MAX_MANIFEST_BYTES);
    assert.throws(() => parseManifest(Buffer.from(deep)), (e: unknown) => e instanceof ManifestError && /nested more than/.test(e.message));
    assert.deepEqual(parsed, [], "JSON.parse was never called");
  });

  it("the most layers allowed are accepted, one more is refused before any is checked", () => {
    const atLimit = manifestWith("", Array.from({ length: MAX_MANIFEST_LAYERS }, () => layer));
    assert.equal(parseManifest(atLimit).layers.length, MAX_MANIFEST_LAYERS);
    // Every layer past the limit is invalid: the count is what refuses it, not a descriptor.
    const over = manifestWith("", [...Array.from({ length: MAX_MANIFEST_LAYERS }, () => layer), { bogus: true }]);
    assert.throws(() => parseManifest(over), (e: unknown) => e instanceof ManifestError && e.message === `manifest.layers: ${MAX_MANIFEST_LAYERS + 1} layers; at most ${MAX_MANIFEST_LAYERS} are accepted`);
  });

  it("a config blob nested too deep is refused the same way", () => {
    assert.equal(parseConfig('{"model_format":"gguf","extra":[[[]]]}').model_format, "gguf");
    assert.throws(() => parseConfig(`{"x":${nestedArrays(1_000_000)}}`), (e: unknown) => e instanceof ManifestError && /config blob is nested more than/.test(e.message));
    assert.deepEqual(parsed.filter((n) => n > 1000), [], "JSON.parse never saw the deep one");
  });
});
