// Checks the TEMPLATE of a create request before it is stored. It must parse as the engine that
// will run it (Jinja when it looks like a Hugging Face chat template, Go text/template otherwise),
// and rendering a short sample conversation must stay within the render limits: a template that
// loops without end or builds huge text on four messages would do so on every request. Other
// errors on the sample are accepted, as Ollama accepts them: a template may rightly refuse, say, a
// system message.

import { badRequest, StatusError } from "../errors.ts";
import { compileTemplate, inputSize, renderWithin, type RenderInput } from "../runner/prompt.ts";
import { limitsFor, RenderBudget, TemplateLimitError } from "../template/index.ts";

const SAMPLE_MESSAGES: RenderInput["messages"] = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "What is the weather in Paris?" },
  { role: "assistant", content: "It is sunny and 21 degrees." },
  { role: "user", content: "And tomorrow?" },
];

const SAMPLE_TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather in a city on a day",
      parameters: { type: "object", properties: { city: { type: "string", description: "The city" }, day: { type: "string", enum: ["today", "tomorrow"] } }, required: ["city"] },
    },
  },
];

/** Throws a 400 naming the TEMPLATE when it does not parse or when a sample render reaches a limit. */
export function checkTemplate(text: string): void {
  let t;
  try {
    t = compileTemplate(text);
  } catch (e) {
    if (e instanceof StatusError) throw badRequest(e.message);
    throw e;
  }
  for (const input of [{ messages: SAMPLE_MESSAGES }, { messages: SAMPLE_MESSAGES, tools: SAMPLE_TOOLS }] as RenderInput[]) {
    try {
      renderWithin(t, input, new RenderBudget(limitsFor(inputSize(input))));
    } catch (e) {
      if (e instanceof TemplateLimitError) throw badRequest(`template error: the TEMPLATE fails on a sample conversation: ${e.message}`);
    }
  }
}
