// Names whose separators promise a part that is not there are invalid, as in Ollama: the empty
// part is never filled from the defaults ("/ns/m" does not become the default host's ns/m). And
// the shortest display form drops the default host and namespace whatever their case.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ModelName } from "../src/name.ts";

test("a name with an empty host, namespace or model part is invalid", () => {
  for (const s of ["/nn/mm", "//mm", "/mm", "//", "hh//", "host//m:t", "h//m", "//mm:t", "h/n/:t", "h/n/m:"]) {
    assert.equal(ModelName.parse(s).isValid(), false, `${JSON.stringify(s)} is invalid`);
  }
  for (const s of ["h/nn/mm:t", "nn/mm", "mm", "host:5000/nn/mm:t", "_why/_the/_lucky:_stiff"]) {
    assert.equal(ModelName.parse(s).isValid(), true, `${JSON.stringify(s)} is valid`);
  }
});

test("the shortest form drops the default host and namespace case-insensitively", () => {
  assert.equal(ModelName.parse("REGISTRY.OLLAMA.AI/LIBRARY/mm:t", "registry.ollama.ai").shortest(), "mm:t");
  assert.equal(ModelName.parse("Registry.Ollama.AI/Alice/mm:t", "registry.ollama.ai").shortest(), "Alice/mm:t");
  assert.equal(ModelName.parse("example.com/library/mm:t", "registry.ollama.ai").shortest(), "example.com/library/mm:t");
});
