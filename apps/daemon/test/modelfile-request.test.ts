// How a Modelfile's PARAMETER lines become a create request's parameters, as Ollama reads them
// (each line on its own): a repeated list parameter gathers every value in order, a repeated
// single value is replaced by the later line, so an override appended to `show --modelfile`
// output takes effect.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { modelfileToRequest } from "../src/cli/modelfile-request.ts";

test("a repeated single-value PARAMETER keeps the last line; stop gathers every line", async () => {
  const text = ["FROM llama3.2", "PARAMETER temperature 0.2", "PARAMETER stop <|a|>", "PARAMETER num_ctx 2048", "PARAMETER temperature 0.9", "PARAMETER stop <|b|>", "PARAMETER num_ctx 8192", ""].join("\n");
  const req = await modelfileToRequest(undefined, text, tmpdir());
  assert.deepEqual(req.parameters, { temperature: 0.9, stop: ["<|a|>", "<|b|>"], num_ctx: 8192 });
});

test("a bad value names its own line, also when an earlier line of the same parameter was good", async () => {
  const text = "FROM llama3.2\nPARAMETER temperature 0.2\nPARAMETER temperature hot\n";
  await assert.rejects(modelfileToRequest(undefined, text, tmpdir()), /line 3\).*PARAMETER temperature: invalid float value \[hot\]/);
});
