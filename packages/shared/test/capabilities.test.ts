// The capability rule the daemon and the registry's catalog share: table-driven over templates and
// GGUF headers written with the project's own writer and read back with its reader.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { headerTraits, mentionsThinking, modelCapabilities, templateTraits, type CapabilityInputs } from "@corral/shared/capabilities";
import { GGUFValueType, readGGUFHeader, writeGGUF, type GGUFHeader, type GGUFKV } from "@corral/shared/gguf/index";

const str = (key: string, value: string): GGUFKV => ({ key, type: GGUFValueType.STRING, value });
const u32 = (key: string, value: number): GGUFKV => ({ key, type: GGUFValueType.UINT32, value });

async function header(kv: GGUFKV[]): Promise<GGUFHeader> {
  const dir = await mkdtemp(join(tmpdir(), "caps-"));
  try {
    const path = join(dir, "m.gguf");
    await writeGGUF(path, { kv, tensors: [{ name: "token_embd.weight", dims: [4], type: 0, source: new Uint8Array(16) }] });
    return await readGGUFHeader(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const tmpl = (t: string) => templateTraits(t, mentionsThinking);
const base: CapabilityInputs = { hasModelLayer: true, projectors: 0 };

test("templates: tools, thinking and insert as the catalog reads them", () => {
  const cases: Array<[string, string[]]> = [
    ["{{ .Prompt }}", ["completion"]],
    ["{{ if .Tools }}[TOOLS]{{ json .Tools }}{{ end }}{{ .Prompt }}", ["completion", "tools"]],
    ["{{ range .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}{{ end }}", ["completion", "thinking"]],
    ["<think>{{ .Prompt }}</think>", ["completion"]],
    ["{{ .Prompt }}<FILL>{{ .Suffix }}", ["completion", "insert"]],
    ["{% for m in messages %}{{ m.content }}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}", ["completion", "tools"]],
    ["{% for m in messages %}{{ m.content.split('</think>')[-1] }}{% endfor %}", ["completion", "thinking"]],
    ["{% for m in messages %}{{ 'we call tools carefully' }}{% endfor %}", ["completion"]],
  ];
  for (const [template, want] of cases) assert.deepEqual(modelCapabilities({ ...base, template: tmpl(template) }), want, template);
});

test("headers: an embedding model by its pooling type, vision by blocks or a projector, the chat template when there is no TEMPLATE", async () => {
  const bert = await header([str("general.architecture", "bert"), u32("bert.pooling_type", 1)]);
  assert.deepEqual(modelCapabilities({ ...base, header: headerTraits(bert, mentionsThinking) }), ["embedding"]);
  const nomic = await header([str("general.architecture", "nomic-bert"), u32("nomic-bert.pooling_type", 1)]);
  assert.deepEqual(modelCapabilities({ ...base, header: headerTraits(nomic, mentionsThinking) }), ["embedding"]);

  const llama = headerTraits(await header([str("general.architecture", "llama")]), mentionsThinking);
  assert.deepEqual(modelCapabilities({ ...base, header: llama }), ["completion"]);
  assert.deepEqual(modelCapabilities({ ...base, header: llama, projectors: 1 }), ["completion", "vision"]);
  const gemma = await header([str("general.architecture", "gemma3"), u32("gemma3.vision.block_count", 2)]);
  assert.deepEqual(modelCapabilities({ ...base, header: headerTraits(gemma, mentionsThinking) }), ["completion", "vision"]);

  const qwen = headerTraits(
    await header([str("general.architecture", "qwen3"), str("tokenizer.chat_template", "{% for m in messages %}<think>{{ m.reasoning }}</think>{% endfor %}{% if tools %}{{ tools }}{% endif %}")]),
    mentionsThinking,
  );
  assert.deepEqual(modelCapabilities({ ...base, header: qwen }), ["completion", "thinking", "tools"], "the GGUF's chat template");
  assert.deepEqual(modelCapabilities({ ...base, header: qwen, template: tmpl("{{ .Prompt }}") }), ["completion"], "a TEMPLATE replaces it");
});

test("unknown parts: a model layer whose header is unknown still completes; declared capabilities are kept", () => {
  assert.deepEqual(modelCapabilities({ hasModelLayer: false, projectors: 0 }), []);
  assert.deepEqual(modelCapabilities({ ...base, declared: ["tools"] }), ["tools", "completion"]);
});
