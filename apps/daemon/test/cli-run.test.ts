// `corral run`, `ps` and `stop` against a real `corral serve`, with the TinyStories model: one
// prompt from the command line or a pipe, a scripted interactive session, and the loaded-model
// table before and after stopping.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, runCLI, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";

let daemon: Daemon;

// With the prompt as the whole template and no sampling randomness, the story always goes on the same way.
const MODELFILE = `FROM ./stories260K.gguf
TEMPLATE "{{ .Prompt }}"
PARAMETER temperature 0
PARAMETER num_predict 20
`;
const CONTINUATION = ", there was a little girl named Lily";

before(async () => {
  daemon = await startDaemon();
  const work = await mkdtemp(join(tmpdir(), "corral-run-"));
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(join(work, "Modelfile"), MODELFILE);
  const r = await runCLI(daemon, ["create", "story", "-f", join(work, "Modelfile")]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await daemon?.stop();
});

test("run with a prompt streams the story to stdout, then a blank line", async () => {
  const r = await runCLI(daemon, ["run", "story", "Once upon a time"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith(CONTINUATION), r.stdout);
  assert.ok(r.stdout.endsWith("\n\n"), JSON.stringify(r.stdout));
  assert.equal(r.stderr, "");
});

test("run reads piped stdin as the prompt, in front of any prompt words", async () => {
  const piped = await runCLI(daemon, ["run", "story"], { input: "Once upon a time" });
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(piped.stdout.startsWith(CONTINUATION), piped.stdout);

  // "Once upon a" from the pipe and "time" from the command line make the same prompt.
  const both = await runCLI(daemon, ["run", "story", "time"], { input: "Once upon a" });
  assert.equal(both.code, 0, both.stderr);
  assert.equal(both.stdout, piped.stdout);
});

test("run --verbose prints Ollama's timings on stderr", async () => {
  const r = await runCLI(daemon, ["run", "story", "--verbose", "Once upon a time"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith(CONTINUATION));
  assert.match(r.stderr, /^total duration: {7}\d[\d.]*(ns|µs|ms|s)\n/);
  assert.match(r.stderr, /\nprompt eval count: {4}\d+ token\(s\)\n/);
  assert.match(r.stderr, /\neval count: {11}20 token\(s\)\n/);
  assert.match(r.stderr, /\neval rate: {12}\d+\.\d\d tokens\/s\n$/);
});

test("run reports bad flags", async () => {
  const keepalive = await runCLI(daemon, ["run", "story", "--keepalive", "300", "hello"]);
  assert.equal(keepalive.code, 1);
  assert.equal(keepalive.stderr, 'Error: time: missing unit in duration "300"\n');

  const think = await runCLI(daemon, ["run", "story", "--think=loud", "hello"]);
  assert.equal(think.code, 1);
  assert.equal(think.stderr, 'Error: invalid value for --think: "loud" (must be true, false, high, medium, low, or max)\n');
});

test("the interactive session, scripted through stdin: /set, /show, a chat turn, /save, /clear, /load", async () => {
  const script = [
    "/set parameter num_predict 10",
    "/set parameter temperature warm",
    "/set system You tell stories about Lily.",
    "/show parameters",
    "/show system",
    "Once upon a time",
    "/save story-session",
    "/clear",
    "/load nothere",
    "/load story-session",
    "/show parameters",
    "/show system",
    "/set format yaml",
    "/colour",
    '"""',
    "Once upon",
    'a time"""',
    "/bye",
    "this line is never read",
  ];
  const r = await runCLI(daemon, ["run", "story", "--interactive"], { input: script.join("\n") + "\n" });
  assert.equal(r.code, 0, r.stderr);
  const answer = ", there was a little girl named Lily\n\n";
  const expected = [
    "Set parameter 'num_predict' to '10'\n",
    `Couldn't set parameter: "invalid float value [warm]"\n`,
    "Set system message.\n",
    // /show parameters: the model's own, then the session's.
    "Model defined parameters:\n",
    "  num_predict                    20\n",
    "  temperature                    0\n",
    "\n",
    "User defined parameters:\n",
    `  ${"num_predict".padEnd(30)} 10\n`,
    "\n",
    // /show system
    "You tell stories about Lily.\n\n",
    // The chat turn, cut to 10 tokens by the session's num_predict.
    answer,
    "Created new model 'story-session'\n",
    "Cleared session context\n",
    "Loading model 'nothere'\n",
    "Couldn't find model 'nothere'\n",
    "Loading model 'story-session'\n",
    // The saved model holds the session's parameter and system message.
    "Model defined parameters:\n",
    "  num_predict                    10\n",
    "  temperature                    0\n",
    "\n",
    "User defined parameters:\n",
    `  ${"num_predict".padEnd(30)} 10\n`,
    "\n",
    "You tell stories about Lily.\n\n",
    "Invalid or missing format. For 'json' mode use '/set format json'\n",
    "Unknown command '/colour'. Type /? for help\n",
  ].join("");
  assert.equal(r.stdout.slice(0, expected.length), expected);
  // Then the answer to the multi-line message "Once upon\na time", and nothing after /bye.
  const last = r.stdout.slice(expected.length);
  assert.ok(last.endsWith("\n\n") && last.trim() !== "", JSON.stringify(last));
  assert.equal(r.stderr, "");

  // /save wrote the session (parameters, system message and the conversation) as a model.
  const mf = await runCLI(daemon, ["show", "story-session", "--modelfile"]);
  assert.equal(mf.code, 0, mf.stderr);
  assert.match(mf.stdout, /\nSYSTEM You tell stories about Lily\.\n/);
  assert.match(mf.stdout, /\nPARAMETER num_predict 10\n/);
  assert.match(mf.stdout, /\nMESSAGE system You tell stories about Lily\.\nMESSAGE user Once upon a time\nMESSAGE assistant , there was a little girl named Lily\n/);
});

test("the interactive session prints the stored conversation first, help on stderr, and ends at end of input", async () => {
  const r = await runCLI(daemon, ["run", "story-session", "--interactive"], { input: "/?\n/help show\n" });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, ">>> Once upon a time\n, there was a little girl named Lily\n\n\n");
  assert.match(r.stderr, /^Available Commands:\n {2}\/set {12}Set session variables\n/);
  assert.match(r.stderr, /Use """ to begin a multi-line message\.\n\n/);
  assert.match(r.stderr, / {2}\/show parameters {3}Show parameters for this model\n/);
});

test("ps lists the loaded model; stop unloads it", async () => {
  const run = await runCLI(daemon, ["run", "story", "--keepalive", "10m", "Once upon a time"]);
  assert.equal(run.code, 0, run.stderr);

  const ps = await runCLI(daemon, ["ps"]);
  assert.equal(ps.code, 0, ps.stderr);
  const lines = ps.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^NAME\s+ID\s+SIZE\s+PROCESSOR\s+CONTEXT\s+UNTIL$/);
  const row = lines.find((l) => l.startsWith("story:latest"));
  assert.ok(row, ps.stdout);
  assert.match(row, /^story:latest\s{4,}[0-9a-f]{12}\s{4,}\d+(\.\d)? [KM]B\s{4,}100% CPU\s{4,}\d+\s{4,}(9|10) minutes from now$/);
  // On the CPU nothing is in GPU memory: that is what makes the row say 100% CPU.
  const api = (await (await fetch(`${daemon.url}/api/ps`)).json()) as { models: Array<{ name: string; size: number; size_vram: number }> };
  const loaded = api.models.find((m) => m.name === "story:latest");
  assert.equal(loaded?.size_vram, 0);
  assert.ok(loaded.size > 0);

  const filtered = await runCLI(daemon, ["ps", "nomatch"]);
  assert.equal(filtered.stdout.trimEnd().split("\n").length, 1, "only the header");

  const stop = await runCLI(daemon, ["stop", "story"]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout, "");
  const after = await runCLI(daemon, ["ps"]);
  assert.ok(!after.stdout.includes("story:latest"), after.stdout);

  const unknown = await runCLI(daemon, ["stop", "nothere"]);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, 'Error: couldn\'t find model "nothere" to stop\n');
});
