// The web catalog in a real browser (Debian's chromium, headless, driven by playwright-core) against
// a real `corral-registry serve` and a real daemon that pushed stories260K: search finds the pushed
// model; its page shows the facts of its GGUF header; a private model is invisible until
// `corral login` signs the browser in; an owner edits the description through the form; the copy
// buttons put the pull and run commands on the clipboard; pull counts follow `corral pull`, not page
// views, and order search results among equal name matches; capability badges, sizes and
// quantizations show on cards and pages; pages are usable by keyboard and on a phone.
// Screenshots of the home, search, model, tag and namespace pages go to test-artifacts/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { startDaemon, runCLI, repoRoot, type Daemon } from "./helpers/daemon.ts";
import { startRegistry, registryCLI, type RegistryProcess } from "./helpers/registry.ts";
import { fixtures } from "./fixtures.ts";
import { GGUFValueType, readGGUFHeader, writeGGUF } from "@corral/shared/gguf/index";
import { ensureChromium, launchBrowser, type Browser } from "./helpers/browser.ts";

const artifacts = join(repoRoot, "test-artifacts");

const skip = ensureChromium();
let registry: RegistryProcess;
let daemon: Daemon;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let host: string;

before(async () => {
  if (skip) return;
  await mkdir(artifacts, { recursive: true });
  registry = await startRegistry();
  host = registry.host;
  daemon = await startDaemon();
  const key = (await readFile(join(daemon.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
  for (const args of [
    ["user", "add", "alice", "--key", key],
    ["user", "add", "bob"],
    ["org", "create", "team", "--owner", "alice"],
    ["org", "add-member", "team", "bob", "--role", "reader"],
  ]) {
    const r = await registryCLI(registry, args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  }
  const work = await mkdtemp(join(tmpdir(), "corral-catalog-"));
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(
    join(work, "Modelfile"),
    [
      "FROM ./stories260K.gguf",
      'TEMPLATE """{{ if .System }}{{ .System }}',
      '{{ end }}{{ .Prompt }}"""',
      "SYSTEM You are a storyteller for small children.",
      "PARAMETER temperature 0",
      "PARAMETER num_predict 64",
      'LICENSE """MIT License',
      "",
      'Copyright (c) 2023 Andrej Karpathy"""',
      "",
    ].join("\n"),
  );
  const created = await runCLI(daemon, ["create", "story", "-f", join(work, "Modelfile")]);
  assert.equal(created.code, 0, created.stderr);
  // Models whose files give them other capabilities: a template that reads .Tools, one with
  // thinking tags around .Thinking, a header with a pooling type (embedding), a projector (vision).
  const stories = await readGGUFHeader(fixtures.stories260K);
  await writeGGUF(join(work, "embed.gguf"), {
    kv: [...stories.kv.values(), { key: "llama.pooling_type", type: GGUFValueType.UINT32, value: 1 }],
    tensors: stories.tensors.map((t) => ({ ...t, source: { path: fixtures.stories260K, offset: stories.dataOffset + t.offset, size: t.size } })),
  });
  await writeGGUF(join(work, "mmproj.gguf"), {
    kv: [
      { key: "general.architecture", type: GGUFValueType.STRING, value: "clip" },
      { key: "general.type", type: GGUFValueType.STRING, value: "projector" },
    ],
    tensors: [{ name: "v.patch_embd.weight", dims: [4], type: 0, source: new Uint8Array(16) }],
  });
  const variants: Record<string, string[]> = {
    toolsmith: ["FROM ./stories260K.gguf", 'TEMPLATE """{{ if .Tools }}[TOOLS]{{ range .Tools }}{{ .Function.Name }} {{ end }}[/TOOLS]{{ end }}{{ .Prompt }}"""'],
    "deep-thinker": ["FROM ./stories260K.gguf", 'TEMPLATE """{{ range .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}{{ end }}"""'],
    embedder: ["FROM ./embed.gguf"],
    seer: ["FROM ./stories260K.gguf", "FROM ./mmproj.gguf"],
  };
  for (const [name, lines] of Object.entries(variants)) {
    await writeFile(join(work, `Modelfile.${name}`), `${lines.join("\n")}\n`);
    const made = await runCLI(daemon, ["create", name, "-f", join(work, `Modelfile.${name}`)]);
    assert.equal(made.code, 0, `${name}: ${made.stderr}`);
  }
  await rm(work, { recursive: true, force: true });
  const copies: Array<[string, string]> = [
    ["story", `${host}/alice/stories260k:latest`],
    ["story", `${host}/alice/stories260k:v1`],
    ["story", `${host}/team/stories-tuned:latest`],
    ["story", `${host}/team/secret-story:latest`],
    ...Object.keys(variants).map((v): [string, string] => [v, `${host}/alice/${v}:latest`]),
  ];
  for (const [source, name] of copies) {
    assert.equal((await runCLI(daemon, ["cp", source, name])).code, 0);
    const push = await runCLI(daemon, ["push", name, "--insecure"]);
    assert.equal(push.code, 0, push.stderr);
  }
  // Repositories start private; only pushed ones can be made public.
  for (const repo of ["alice/stories260k", "team/stories-tuned", ...Object.keys(variants).map((v) => `alice/${v}`)]) {
    const r = await registryCLI(registry, ["visibility", repo, "public"]);
    assert.equal(r.code, 0, `visibility ${repo}: ${r.stderr}`);
  }

  browser = await launchBrowser({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
  context = browser.context;
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: registry.url });
  page = browser.page;
});

after(async () => {
  await browser?.close();
  await daemon?.stop();
  await registry?.stop();
});

async function shot(name: string, fullPage = true): Promise<void> {
  await page.screenshot({ path: join(artifacts, `catalog-${name}.png`), fullPage });
}

const factOf = (name: string) => page.locator(`[data-fact="${name}"]`).first().innerText();

test("search finds the pushed model", { skip }, async () => {
  await page.goto(`${registry.url}/`);
  assert.equal(await page.title(), "Corral · models");
  await shot("home-anonymous");
  await page.getByLabel("Search models").fill("stories");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\?q=stories/);
  const results = page.locator("ul.models > li h3 a");
  const names = await results.allInnerTexts();
  assert.ok(names.some((n) => n.replace(/\s+/g, "") === "alice/stories260k"), `results: ${names.join(", ")}`);
  assert.ok(!names.some((n) => n.includes("secret")), "the private model is not found anonymously");
  await shot("search");
});

const pullsShown = () => page.locator('[data-fact="pulls"]').first().innerText();
const resultNames = async (): Promise<string[]> => (await page.locator("ul.models > li h3 a").allInnerTexts()).map((n) => n.replace(/\s+/g, ""));

test("pull counts follow the daemon's pulls, not page views, and search puts the more pulled model first", { skip }, async () => {
  await page.goto(`${registry.url}/?q=stories`);
  assert.deepEqual(await resultNames(), ["team/stories-tuned", "alice/stories260k"], "two name prefixes without pulls: the newer first");
  await page.goto(`${registry.url}/alice/stories260k`);
  assert.equal(await pullsShown(), "0 pulls");
  for (let i = 0; i < 3; i++) await page.reload();
  await page.goto(`${registry.url}/alice/stories260k/tags/v1`);
  assert.equal(await pullsShown(), "0 pulls", "page views are not pulls");

  for (const tag of ["latest", "latest", "v1"]) {
    const pulled = await runCLI(daemon, ["pull", `${host}/alice/stories260k:${tag}`, "--insecure"]);
    assert.equal(pulled.code, 0, pulled.stderr);
  }
  await page.goto(`${registry.url}/alice/stories260k`);
  assert.equal(await pullsShown(), "3 pulls");
  assert.equal(await page.locator('[data-tag-pulls="latest"]').innerText(), "2");
  assert.equal(await page.locator('[data-tag-pulls="v1"]').innerText(), "1");
  await page.goto(`${registry.url}/alice/stories260k/tags/v1`);
  assert.equal(await pullsShown(), "1 pull");
  await page.reload();
  assert.equal(await pullsShown(), "1 pull");
  await page.goto(`${registry.url}/?q=stories`);
  assert.deepEqual(await resultNames(), ["alice/stories260k", "team/stories-tuned"], "pulls break the tie");
  assert.equal(await page.locator("ul.models > li", { hasText: "alice/stories260k" }).locator('[data-card="pulls"]').innerText(), "3 pulls");
  await shot("search-ranked", false);
});

test("capability badges, sizes and quantizations on the cards and the model pages", { skip }, async () => {
  const want: Record<string, string[]> = {
    stories260k: ["completion"],
    toolsmith: ["completion", "tools"],
    "deep-thinker": ["completion", "thinking"],
    embedder: ["embedding"],
    seer: ["completion", "vision"],
  };
  await page.goto(`${registry.url}/alice`);
  for (const [name, caps] of Object.entries(want)) {
    const item = page.locator("ul.models > li", { has: page.locator(`h3 a[href="/alice/${name}"]`) });
    assert.deepEqual(await item.locator("[data-capability]").allInnerTexts(), caps, `${name} card`);
    assert.match(await item.locator('[data-card="size"]').innerText(), /^1\.\d MB$/, `${name} size`);
    assert.equal(await item.locator('[data-card="quantization"]').innerText(), "F32", `${name} quantization`);
    assert.equal(await item.locator('[data-parameters="default"]').innerText(), "293K", `${name} parameters`);
  }
  await shot("namespace-cards", false);
  for (const [name, caps] of Object.entries(want)) {
    await page.goto(`${registry.url}/alice/${name}`);
    assert.deepEqual(await page.locator("main .badges [data-capability]").allInnerTexts(), caps, `${name} page`);
  }
  await shot("model-badges", false);
});

test("the stories260K model page shows its architecture, parameter count, context length and quantization", { skip }, async () => {
  await page.goto(`${registry.url}/alice/stories260k`);
  assert.equal(await factOf("architecture"), "llama");
  assert.equal(await factOf("parameters"), "293K");
  assert.equal(await page.locator('[data-fact="parameters"]').first().getAttribute("title"), "292,800");
  assert.equal(await factOf("context-length"), "2,048");
  assert.equal(await factOf("quantization"), "F32");
  assert.equal(await page.locator("#pull-command").innerText(), `corral pull ${host}/alice/stories260k:latest --insecure`);
  const key = await readFile(join(daemon.home, ".corral", "id_ed25519.pub"), "utf8");
  assert.ok(key.startsWith("ssh-ed25519 "));
  assert.match(await factOf("push-key"), /^SHA256:[A-Za-z0-9+/]{43}$/, "the pushing key's fingerprint");
  const body = await page.locator("main").innerText();
  assert.match(body, /Last pushed\s+.*\s+ago\s+by\s+alice/);
  assert.match(body, /You are a storyteller for small children\./, "system prompt");
  assert.match(body, /MIT License/, "licence");
  assert.match(body, /"temperature":0/, "parameters");
});

test("a private model is invisible anonymously and visible after corral login", { skip }, async () => {
  const anonymous = await page.goto(`${registry.url}/team/secret-story`);
  assert.equal(anonymous?.status(), 404);
  await page.goto(`${registry.url}/team`);
  assert.ok(!(await page.locator("main").innerText()).includes("secret-story"));

  const login = await runCLI(daemon, ["login", registry.url]);
  assert.equal(login.code, 0, login.stderr);
  assert.match(login.stderr, /sign in to .* as alice/);
  const link = login.stdout.trim();
  assert.match(link, new RegExp(`^${registry.url}/-/login/[A-Za-z0-9_-]{43}$`));
  await page.goto(link);
  await page.getByRole("button", { name: "Sign in as alice" }).click();
  await page.waitForURL(`${registry.url}/alice`);
  assert.match(await page.locator("header").innerText(), /Signed in as alice/);
  const cookies = await context.cookies(registry.url);
  const session = cookies.find((c) => c.name === "corral_session");
  assert.ok(session?.httpOnly, "HttpOnly session cookie");
  assert.equal(session?.sameSite, "Lax");

  const visible = await page.goto(`${registry.url}/team/secret-story`);
  assert.equal(visible?.status(), 200);
  assert.equal(await factOf("architecture"), "llama");
  await page.goto(`${registry.url}/team`);
  assert.ok((await page.locator("main").innerText()).includes("secret-story"));
  // The link was used up.
  assert.equal((await page.goto(link))?.status(), 404);
});

test("an owner writes the description with the form; the page renders it", { skip }, async () => {
  await page.goto(`${registry.url}/alice/stories260k`);
  await page.locator("summary", { hasText: "Edit model" }).click();
  await page.getByLabel("Description").fill(
    [
      "Karpathy's **TinyStories 260K** llama: a 260K-parameter model trained on simple children's stories.",
      "",
      "## Use it",
      "",
      "```sh",
      `corral run ${host}/alice/stories260k "Once upon a time"`,
      "```",
      "",
      "- 5 layers, 8 heads, a 512-token vocabulary",
      "- context of 2048 tokens",
      "",
      "<script>document.title='pwned'</script>",
    ].join("\n"),
  );
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.waitForURL(/saved=1/);
  assert.match(await page.locator(".notice").innerText(), /Changes saved/);
  // The opening paragraph is the lead under the title, the rest the readme: each shown once.
  assert.equal(await page.locator(".lead strong").count(), 1, "the lead keeps the paragraph's emphasis");
  assert.equal(await page.locator(".lead strong").innerText(), "TinyStories 260K");
  assert.equal((await page.locator("main").innerText()).split("trained on simple children's stories").length - 1, 1);
  assert.match(await page.locator(".readme").innerText(), /Use it[\s\S]*5 layers, 8 heads/);
  assert.notEqual(await page.title(), "pwned", "raw HTML in a description does not run");
  await page.goto(`${registry.url}/?q=children`);
  assert.ok((await page.locator("ul.models").innerText()).includes("stories260k"), "the description is searchable");
});

test("the copy button copies the pull command", { skip }, async () => {
  await page.goto(`${registry.url}/alice/stories260k`);
  const button = page.getByRole("button", { name: /^Copy: Pull command/ });
  assert.ok(await button.isVisible(), "the script reveals the button");
  await button.click();
  // The clipboard write is asynchronous; the label changes once it has succeeded (polled, with the
  // test runner's overall limit for a label that never changes).
  while ((await button.innerText()) !== "Copied") await new Promise((r) => setTimeout(r, 50));
  const copied = await page.evaluate<string>("navigator.clipboard.readText()");
  assert.equal(copied, `corral pull ${host}/alice/stories260k:latest --insecure`);
  await page.mouse.move(0, 0);
  // The label goes back after two seconds (polled from here: the page's CSP forbids evaluated strings).
  while ((await button.innerText()) !== "Copy") await new Promise((r) => setTimeout(r, 100));
  // The run command beside it, with its own button.
  assert.equal(await page.locator("#run-command").innerText(), `corral run ${host}/alice/stories260k:latest --insecure`);
  const run = page.getByRole("button", { name: /^Copy: Run command/ });
  await run.click();
  while ((await run.innerText()) !== "Copied") await new Promise((r) => setTimeout(r, 50));
  assert.equal(await page.evaluate<string>("navigator.clipboard.readText()"), `corral run ${host}/alice/stories260k:latest --insecure`);
  assert.equal(await button.innerText(), "Copy", "only the button pressed says so");
  await page.mouse.move(0, 0);
  while ((await run.innerText()) !== "Copy") await new Promise((r) => setTimeout(r, 100));
  await shot("model");
});

test("the tag page shows the full Modelfile", { skip }, async () => {
  await page.goto(`${registry.url}/alice/stories260k/tags/v1`);
  assert.equal(await page.locator("#run-command").innerText(), `corral run ${host}/alice/stories260k:v1 --insecure`);
  const modelfile = await page.locator("#modelfile").innerText();
  assert.match(modelfile, new RegExp(`^FROM ${host.replace(/\./g, "\\.")}/alice/stories260k:v1$`, "m"));
  assert.match(modelfile, /^SYSTEM You are a storyteller for small children\.$/m);
  assert.match(modelfile, /^PARAMETER num_predict 64$/m);
  assert.match(modelfile, /^LICENSE "MIT License/m);
  await shot("tag");
});

test("the namespace page lists the organisation's models and, for its owner, its members", { skip }, async () => {
  await page.goto(`${registry.url}/team`);
  const main = await page.locator("main").innerText();
  assert.match(main, /Organisation/);
  assert.match(main, /stories-tuned/);
  assert.match(main, /bob\s+reader/);
  await shot("namespace");
  // The front page as a signed-in member sees it: private models too, with their descriptions.
  await page.goto(`${registry.url}/`);
  assert.match(await page.locator("ul.models").innerText(), /secret-story/);
  await shot("home");
});

test("keyboard: the skip link comes first and focus is visible; the layout fits a phone", { skip }, async () => {
  await page.goto(`${registry.url}/alice/stories260k`);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate<string | undefined>("document.activeElement?.textContent?.trim()"), "Skip to content");
  const outline = await page.evaluate<string>("getComputedStyle(document.activeElement).outlineStyle");
  assert.notEqual(outline, "none");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${registry.url}/alice/stories260k`);
  const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth");
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);
  await shot("model-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});

test("sign-out ends the session", { skip }, async () => {
  await page.goto(`${registry.url}/`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${registry.url}/`);
  assert.ok(await page.getByRole("link", { name: "Sign in" }).isVisible());
  assert.equal((await page.goto(`${registry.url}/team/secret-story`))?.status(), 404);
});
