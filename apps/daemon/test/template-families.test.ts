// The Go templates that create installs for a detected chat format (src/create/templates/) render
// byte for byte what Ollama's template of the same family renders, for every conversation shape:
// Ollama's own golden outputs (three conversations per family), and further shapes — system or
// not, assistant last, no messages, the prompt/suffix mode, several system messages, tools and
// tool calls — whose expected outputs were rendered from Ollama's templates
// (test/fixtures/template-goldens/PROVENANCE.md). Rendering goes through the model-template layer
// the daemon uses for /api/chat and /api/generate.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { describe, it } from "node:test";
import { parseModelTemplate, renderModelTemplate, type ChatMessage, type TemplateValues } from "../src/template/index.ts";

const templatesDir = new URL("../src/create/templates/", import.meta.url);
const goldensDir = new URL("./fixtures/template-goldens/", import.meta.url);

const shipped = readdirSync(templatesDir)
  .filter((f) => f.endsWith(".gotmpl"))
  .map((f) => f.slice(0, -".gotmpl".length))
  .sort();
/** The families Ollama ships: one golden folder per template. */
const ollamaFamilies = readdirSync(goldensDir)
  .filter((f) => f.endsWith(".gotmpl") && statSync(new URL(f, goldensDir)).isDirectory())
  .map((f) => f.slice(0, -".gotmpl".length))
  .sort();

const ours = (family: string): string => readFileSync(new URL(`${family}.gotmpl`, templatesDir), "utf8");
const render = (family: string, values: TemplateValues): string => renderModelTemplate(parseModelTemplate(ours(family)), structuredClone(values));

// The conversations of Ollama's golden files, named as the files are.
const msg = (role: string, content: string): ChatMessage => ({ role, content });
const hello = msg("user", "Hello, how are you?");
const reply = msg("assistant", "I'm doing great. How can I help you today?");
const followUp = msg("user", "I'd like to show off how chat templating works!");
const goldenConversations: Record<string, ChatMessage[]> = {
  user: [hello],
  "user-assistant-user": [hello, reply, followUp],
  "system-user-assistant-user": [msg("system", "You are a helpful assistant."), hello, reply, followUp],
};

const moreShapes = JSON.parse(readFileSync(new URL("more-shapes.json", goldensDir), "utf8")) as {
  cases: Record<string, TemplateValues>;
  renders: Record<string, Record<string, string>>;
};

it("a Go template ships for every family Ollama has, and none besides", () => {
  assert.ok(ollamaFamilies.length >= 20, ollamaFamilies.join(", "));
  assert.deepEqual(shipped, ollamaFamilies);
  assert.deepEqual(Object.keys(moreShapes.renders).sort(), ollamaFamilies);
});

for (const family of shipped) {
  describe(family, () => {
    for (const [name, messages] of Object.entries(goldenConversations)) {
      it(`renders Ollama's golden ${name} byte for byte`, () => {
        const want = readFileSync(new URL(`${family}.gotmpl/${name}`, goldensDir), "utf8");
        assert.equal(render(family, { messages }), want);
      });
    }
    for (const [name, values] of Object.entries(moreShapes.cases)) {
      it(`renders ${name} as Ollama's template does`, () => {
        const want = moreShapes.renders[family]?.[name];
        assert.equal(typeof want, "string", `no expected output for ${family} ${name}`);
        assert.equal(render(family, values), want);
      });
    }
  });
}
