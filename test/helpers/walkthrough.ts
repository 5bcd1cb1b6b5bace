// The README's "Five minutes with Corral" commands, as written, for the suites that run them: from
// the checkout (test/readme-walkthrough.test.ts) and with the programs installed from their npm
// tarballs (test/install.test.ts). Only the registry address, the /tmp paths and, where asked, the
// fixture path and the `npx` prefix are rewritten.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { repoRoot } from "./daemon.ts";

export interface WalkthroughOptions {
  /** host:port of the registry the commands talk to. */
  registryHost: string;
  /** Where the walkthrough's /tmp files go. */
  tmp: string;
  /** Run `corral …` instead of `npx corral …` (installed programs on PATH). */
  withoutNpx?: boolean;
  /** Name the fixture by its absolute path (for a working directory outside the checkout). */
  absoluteFixtures?: boolean;
}

/** The two halves of the walkthrough: this machine, and "another machine". */
export async function walkthroughScripts(o: WalkthroughOptions): Promise<[string, string]> {
  const readme = await readFile(join(repoRoot, "README.md"), "utf8");
  const m = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme);
  assert.ok(m, "the README has a walkthrough block");
  let script = m[1]!.replaceAll("127.0.0.1:5005", o.registryHost).replaceAll("/tmp/", `${o.tmp}/`);
  if (o.absoluteFixtures) script = script.replaceAll(" test/fixtures/", ` ${join(repoRoot, "test/fixtures")}/`);
  if (o.withoutNpx) script = script.replace(/\bnpx (corral(-registry)?)\b/g, "$1");
  const [first, second] = script.split(/^# --- on another machine.*$/m);
  assert.ok(first && second, "the walkthrough has an 'on another machine' part");
  return [first, second];
}

/** Runs a script with bash -euo pipefail; resolves with its exit code and everything it printed. */
export function bash(script: string, opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", script], { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out }));
  });
}

/** What the first half prints when it worked: the story, the quantized model, the push. */
export function assertFirstHalf(out: string, registryHost: string): void {
  assert.match(out, /, there was a little girl named Lily/);
  assert.match(out, /story:q8\s+[0-9a-f]{12}/);
  assert.match(out, /quantization\s+Q8_0/);
  assert.match(out, new RegExp(`You can find your model at:\\s+${registryHost}/alice/story:latest`));
}

/** What the second half prints when it worked: the pull and the same story. */
export function assertSecondHalf(out: string): void {
  assert.match(out, /success/);
  assert.match(out, /, there was a little girl named Lily/);
}
