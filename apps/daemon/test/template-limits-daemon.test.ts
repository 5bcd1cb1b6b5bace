// Hostile TEMPLATEs against a real `corral serve`: create refuses what cannot parse and what runs
// away on a sample conversation; a template that only runs away on a longer conversation (a
// model's TEMPLATE, a GGUF's own chat template, or a request's template) fails that request with
// a template error (native and OpenAI shapes) while the daemon goes on answering other requests,
// and serves a normal generate afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, runCLI, uploadFile, type Daemon } from "../../../test/helpers/daemon.ts";
import { listFiles } from "../../../test/helpers/files.ts";
import { fixtures } from "../../../test/fixtures.ts";
import { readGGUFHeader, writeGGUF, GGUFValueType } from "@corral/shared/gguf/index";

let daemon: Daemon;
let digest: string;

const STOPPED = /^template error: rendering stopped/;

/** Runs away only on conversations longer than create's sample: n^6 iterations for n messages. */
const GO_SIXFOLD =
  "{{ range .Messages }}{{ range $.Messages }}{{ range $.Messages }}{{ range $.Messages }}{{ range $.Messages }}{{ range $.Messages }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}" +
  "{{ range .Messages }}{{ .Content }} {{ end }}";
const JINJA_SIXFOLD =
  "{% for a in messages %}{% for b in messages %}{% for c in messages %}{% for d in messages %}{% for e in messages %}{% for f in messages %}" +
  "{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% for m in messages %}{{ m.content }} {% endfor %}";

/** Runs away on any conversation: t26 calls t25 twice, and so on down to t0. */
function goDoubling(levels = 26): string {
  let src = '{{ define "t0" }}x{{ end }}';
  for (let i = 1; i <= levels; i++) src += `{{ define "t${i}" }}{{ template "t${i - 1}" . }}{{ template "t${i - 1}" . }}{{ end }}`;
  return src + `{{ template "t${levels}" . }}{{ .Prompt }}`;
}
const JINJA_TRIPLE = "{% for a in range(999) %}{% for b in range(999) %}{% for c in range(999) %}{{ c }}{% endfor %}{% endfor %}{% endfor %}";

/** 40 alternating messages ending with the user's: 40^6 iterations for the sixfold templates. */
const longChat = Array.from({ length: 40 }, (_, i) => ({ role: i % 2 === 0 ? "user" : "assistant", content: `turn ${i}` }));

function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${daemon.url}${path}`, { method: "POST", body: JSON.stringify(body) });
}

async function create(model: string, template: string | undefined, from?: string, files: Record<string, string> = { "stories260K.gguf": digest }): Promise<Response> {
  const base = from ? { from } : { files };
  return post("/api/create", { model, ...base, ...(template === undefined ? {} : { template }), parameters: { temperature: 0, num_predict: 4 }, stream: false });
}

/** stories260K with `tokenizer.chat_template` set: a model without a TEMPLATE renders with it. */
async function withChatTemplate(chatTemplate: string): Promise<string> {
  const h = await readGGUFHeader(fixtures.stories260K);
  const out = join(daemon.home, "chat-template.gguf");
  await writeGGUF(out, {
    kv: [...[...h.kv.values()].filter((e) => e.key !== "tokenizer.chat_template"), { key: "tokenizer.chat_template", type: GGUFValueType.STRING, value: chatTemplate }],
    tensors: h.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, source: { path: fixtures.stories260K, offset: h.dataOffset + t.offset, size: t.size } })),
  });
  return out;
}

before(async () => {
  daemon = await startDaemon();
  digest = await uploadFile(daemon, fixtures.stories260K);
  for (const [model, template] of [
    ["plain", "{{ range .Messages }}{{ .Content }} {{ end }}"],
    ["sixfold-go", GO_SIXFOLD],
  ] as const) {
    const r = await create(model, template);
    assert.equal(r.status, 200, `${model}: ${await r.text()}`);
  }
  const jinja = await create("sixfold-jinja", undefined, undefined, { "model.gguf": await uploadFile(daemon, await withChatTemplate(JINJA_SIXFOLD)) });
  assert.equal(jinja.status, 200, await jinja.text());
});

after(async () => {
  await daemon?.stop();
});

/**
 * Sends `hostile` and, until it has been answered, keeps asking /api/version: every one of those
 * must be answered. Returns the hostile response and how many version answers came meanwhile.
 */
async function whileServing(hostile: Promise<Response>): Promise<{ res: Response; versions: number }> {
  let settled = false;
  const done = hostile.finally(() => (settled = true));
  let versions = 0;
  do {
    const v = await fetch(`${daemon.url}/api/version`);
    assert.equal(v.status, 200);
    assert.match(((await v.json()) as { version: string }).version, /\d/);
    versions++;
  } while (!settled);
  return { res: await done, versions };
}

async function expectTemplateError(res: Response): Promise<string> {
  assert.equal(res.status, 500);
  const body = (await res.json()) as { error: string };
  assert.match(body.error, STOPPED);
  return body.error;
}

test("a chat whose Go template runs away fails with a template error while /api/version keeps answering", async () => {
  const { res, versions } = await whileServing(post("/api/chat", { model: "sixfold-go", messages: longChat, stream: false }));
  assert.ok(versions >= 1);
  await expectTemplateError(res);
});

test("a chat whose GGUF chat template (Jinja) runs away fails the same way, streamed or not", async () => {
  const { res } = await whileServing(post("/api/chat", { model: "sixfold-jinja", messages: longChat }));
  assert.equal(res.headers.get("content-type")?.startsWith("application/json"), true, "the error comes before any stream line");
  await expectTemplateError(res);
  await expectTemplateError(await post("/api/chat", { model: "sixfold-jinja", messages: longChat, stream: false }));
});

test("a request's own template that runs away fails the generate", async () => {
  const { res } = await whileServing(post("/api/generate", { model: "plain", prompt: "Once upon a time", template: goDoubling(), stream: false }));
  await expectTemplateError(res);
});

test("the OpenAI-compatible endpoint answers a runaway template in OpenAI's error shape", async () => {
  const { res } = await whileServing(post("/v1/chat/completions", { model: "sixfold-go", messages: longChat }));
  assert.equal(res.status, 500);
  const body = (await res.json()) as { error: { message: string; type: string } };
  assert.match(body.error.message, STOPPED);
  assert.equal(body.error.type, "api_error");
});

test("after the runaway templates the daemon still generates normally", async () => {
  const r = await post("/api/chat", { model: "plain", messages: [{ role: "user", content: "Once upon a time" }], stream: false });
  assert.equal(r.status, 200, await r.clone().text());
  const body = (await r.json()) as { done: boolean; message: { content: string } };
  assert.equal(body.done, true);
  assert.ok(body.message.content.length > 0);
  // The same sixfold template is fine on a short conversation.
  const short = await post("/api/chat", { model: "sixfold-go", messages: longChat.slice(0, 3), stream: false });
  assert.equal(short.status, 200, await short.clone().text());
});

test("create refuses a TEMPLATE that does not parse or that runs away on a sample conversation, and stores nothing", async () => {
  const baseline = await listFiles(daemon.modelsDir);
  const cases: [string, RegExp][] = [
    ["{{ .Prompt", /^template error: template: :1: unclosed action$/],
    ["{% for m in messages %}{{ m.content }}", /^template error: .+/],
    [goDoubling(), /^template error: the TEMPLATE fails on a sample conversation: rendering stopped/],
    [JINJA_TRIPLE, /^template error: the TEMPLATE fails on a sample conversation: rendering stopped/],
    ["{{ range(10 ** 9) | length }}{{ messages }}", /^template error: the TEMPLATE fails on a sample conversation: rendering stopped: a list of 1000000000 items exceeds the limit of \d+$/],
  ];
  for (const [template, pattern] of cases) {
    const r = await create("refused", template, "plain");
    assert.equal(r.status, 400, template.slice(0, 60));
    assert.match(((await r.json()) as { error: string }).error, pattern);
  }
  assert.deepEqual(await listFiles(daemon.modelsDir), baseline, "the store must be unchanged");
  assert.equal((await post("/api/show", { model: "refused" })).status, 404);
});

test("corral create prints the refusal as one error line and exits non-zero", async () => {
  const modelfile = join(daemon.home, "Modelfile.runaway");
  await writeFile(modelfile, `FROM plain\nTEMPLATE """${JINJA_TRIPLE}"""\n`);
  const r = await runCLI(daemon, ["create", "refused-cli", "-f", modelfile]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("Error: "));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, /^Error: template error: the TEMPLATE fails on a sample conversation: rendering stopped/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
});

test("the real templates, and templates that merely fail on the sample, stay creatable", async () => {
  const dirs = [new URL("../src/create/templates/", import.meta.url), new URL("./fixtures/chat-templates/", import.meta.url)];
  const templates: [string, string][] = [];
  for (const dir of dirs) {
    for (const f of await readdir(dir)) if (f.endsWith(".jinja") || f.endsWith(".gotmpl")) templates.push([f, await readFile(new URL(f, dir), "utf8")]);
  }
  assert.ok(templates.length >= 25);
  // Ordinary errors on the sample are the template's business, as in Ollama: an undefined
  // {{template}} and a Jinja template that refuses system messages.
  templates.push(["undefined-define", '{{ template "missing" . }}{{ .Prompt }}'], ["refuses-system", "{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}"]);
  for (const [name, template] of templates) {
    const r = await create(`real-${name.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`, template, "plain");
    assert.equal(r.status, 200, `${name}: ${await r.text()}`);
  }
});
