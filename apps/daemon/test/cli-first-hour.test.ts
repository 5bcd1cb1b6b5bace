// What a new user of `corral` meets in the first hour: `help` and a mistyped command answer as
// Ollama's CLI does; a malformed CORRAL_HOST is one line, never a stack trace, for every command;
// speaking TLS to a plain-HTTP registry says to add --insecure; and CORRAL_REGISTRY set where the
// CLI runs decides where a short name goes, whatever the daemon was started with.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { corralBin, repoRoot, runCLI, startDaemon, stopProcess, trackChild, type Daemon } from "../../../test/helpers/daemon.ts";
import { fixtures } from "../../../test/fixtures.ts";

let home: string;
let work: string;
before(async () => {
  home = await mkdtemp(join(tmpdir(), "corral-first-hour-"));
  work = await mkdtemp(join(tmpdir(), "corral-first-hour-work-"));
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(join(work, "Modelfile"), "FROM ./stories260K.gguf\n");
});
after(async () => {
  await rm(home, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

/** The CLI with no daemon behind it: nothing these cases do may need one. */
const noDaemon = (): Pick<Daemon, "env"> => ({ env: { ...process.env, HOME: home, CORRAL_HOST: "127.0.0.1:9", OLLAMA_HOST: "", CORRAL_REGISTRY: "" } });

describe("help and unknown commands, as Ollama's CLI answers them", () => {
  test("`corral help run` prints run's help and exits 0", async () => {
    const r = await runCLI(noDaemon(), ["help", "run"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /^Usage: corral run \[options\] <model> \[prompt\.\.\.\]\n/);
    assert.match(r.stdout, /--insecure/);
  });

  test("`corral help` prints the command list, which names help itself, and exits 0", async () => {
    const r = await runCLI(noDaemon(), ["help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: corral \[options\] \[command\]\n/);
    assert.match(r.stdout, /\n {2}help \[command\] +Help about any command\n/);
    assert.match(r.stdout, /\n {2}run \[options\] <model> \[prompt\.\.\.\]/);
  });

  test("an unknown command is one line naming it, with exit status 1", async () => {
    const r = await runCLI(noDaemon(), ["frobnicate"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, 'Error: unknown command "frobnicate" for "corral"\n');
  });

  test("a near miss gets cobra's suggestions", async () => {
    const r = await runCLI(noDaemon(), ["serv"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error: unknown command "serv" for "corral"\n\nDid you mean this?\n\tserve\n\n');
    const pul = await runCLI(noDaemon(), ["pul", "alice/story"]);
    assert.equal(pul.code, 1);
    // Within two edits, or a prefix: cobra's rule, in the order the commands are listed.
    assert.equal(pul.stderr, 'Error: unknown command "pul" for "corral"\n\nDid you mean this?\n\trun\n\tps\n\tpull\n\tpush\n\n');
  });

  test("help on an unknown topic says so and prints the usage, as cobra does", async () => {
    const r = await runCLI(noDaemon(), ["help", "nosuch"]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /^Unknown help topic \[`nosuch`\]\nUsage: corral \[options\] \[command\]\n/);
  });
});

describe("a malformed CORRAL_HOST", () => {
  const BAD: Array<[string, RegExp]> = [
    ["http://[::1", /^Error: CORRAL_HOST: "http:\/\/\[::1" is not a valid host: /],
    ["host:99999", /^Error: CORRAL_HOST: "host:99999" has port 99999, out of range \(0-65535\)/],
    ["[::1]:abc", /^Error: CORRAL_HOST: "\[::1\]:abc" has port "abc", not a number/],
    ["exa mple:1", /^Error: CORRAL_HOST: "exa mple:1" is not a valid host: /],
  ];

  /** One `Error: CORRAL_HOST: …` line on stderr, nothing else, exit status 1. */
  function assertOneLine(r: { code: number; stdout: string; stderr: string }, pattern: RegExp, what: string): void {
    assert.equal(r.code, 1, `${what}: exit status\n${r.stdout}${r.stderr}`);
    const lines = r.stderr.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 1, `${what}: one line\n${r.stderr}`);
    assert.match(lines[0]!, pattern, what);
    assert.match(lines[0]!, /set CORRAL_HOST to \[scheme:\/\/\]host\[:port\], e\.g\. 127\.0\.0\.1:11434$/, what);
  }

  test("every client command refuses with one line", async () => {
    for (const [value, pattern] of BAD) {
      for (const args of [["list"], ["ps"], ["pull", "alice/story"], ["run", "story", "hi"], ["show", "story"], ["key"], ["--version"]]) {
        const r = await runCLI(noDaemon(), args, { env: { CORRAL_HOST: value } });
        assertOneLine(r, pattern, `CORRAL_HOST=${value} corral ${args.join(" ")}`);
      }
    }
  });

  test("OLLAMA_HOST, read when CORRAL_HOST is unset, is named when it is the bad one", async () => {
    const r = await runCLI(noDaemon(), ["list"], { env: { CORRAL_HOST: "", OLLAMA_HOST: "host:99999" } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: OLLAMA_HOST: "host:99999" has port 99999, out of range \(0-65535\); set OLLAMA_HOST to /);
  });

  test("serve refuses with one line too, before listening anywhere", async () => {
    for (const [value, pattern] of BAD) {
      const child = spawn(process.execPath, [corralBin, "serve"], { cwd: repoRoot, env: { ...noDaemon().env, CORRAL_HOST: value, CORRAL_MODELS: join(home, "models") }, stdio: ["ignore", "pipe", "pipe"] });
      trackChild(child);
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      // Until it exits, or says it listens (then it picked some other address: a failure).
      const code = await new Promise<number | "listening">((resolve) => {
        child.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
          if (/listening on/.test(stderr)) resolve("listening");
        });
        child.once("close", (c) => resolve(c ?? -1));
      });
      if (code === "listening") await stopProcess(child);
      assertOneLine({ code: code === "listening" ? 0 : code, stdout, stderr }, pattern, `CORRAL_HOST=${value} corral serve`);
    }
  });

  test("a well-formed host that serve cannot listen on is one line too", async () => {
    const child = spawn(process.execPath, [corralBin, "serve"], { cwd: repoRoot, env: { ...noDaemon().env, CORRAL_HOST: "no-such-host.invalid:11434", CORRAL_MODELS: join(home, "models") }, stdio: ["ignore", "ignore", "pipe"] });
    trackChild(child);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number>((resolve) => child.once("close", (c) => resolve(c ?? -1)));
    assert.equal(code, 1, stderr);
    const errors = stderr.split("\n").filter((l) => l.startsWith("Error: ") || /^\s+at /.test(l));
    assert.equal(errors.length, 1, stderr);
    assert.match(errors[0]!, /^Error: CORRAL_HOST: cannot listen on no-such-host\.invalid:11434: getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid$/);
  });
});

/** A registry that speaks plain HTTP only, recording what it is asked. */
async function plainRegistry(): Promise<{ server: Server; host: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

describe("against a registry", () => {
  let daemon: Daemon;
  let registry: Awaited<ReturnType<typeof plainRegistry>>;

  before(async () => {
    // Started without CORRAL_REGISTRY: short names resolve to registry.ollama.ai there.
    daemon = await startDaemon({ env: { CORRAL_REGISTRY: "" } });
    registry = await plainRegistry();
  });
  after(async () => {
    await daemon?.stop();
    registry?.server.close();
  });

  const errorLine = (stderr: string): string => stderr.split("\n").find((l) => l.startsWith("Error: ")) ?? stderr;

  test("pull over TLS from a plain-HTTP registry says to add --insecure", async () => {
    const r = await runCLI(daemon, ["pull", `${registry.host}/alice/story`]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(errorLine(r.stderr), new RegExp(`^Error: .*${registry.host} answered .*plain HTTP.*: add --insecure`), r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  });

  test("push over TLS to a plain-HTTP registry says to add --insecure", async () => {
    const name = `${registry.host}/alice/pushed`;
    const created = await runCLI(daemon, ["create", name, "-f", "Modelfile"], { cwd: work });
    assert.equal(created.code, 0, created.stderr);
    const r = await runCLI(daemon, ["push", name]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(errorLine(r.stderr), new RegExp(`^Error: .*${registry.host} answered .*plain HTTP.*: add --insecure`), r.stderr);
  });

  test("CORRAL_REGISTRY set for the CLI sends a short name's pull there, though the daemon was started without it", async () => {
    registry.requests.length = 0;
    const r = await runCLI(daemon, ["pull", "alice/story", "--insecure"], { env: { CORRAL_REGISTRY: registry.host } });
    assert.equal(r.code, 1, "the registry has no such model");
    assert.ok(registry.requests.includes("GET /v2/alice/story/manifests/latest"), `the registry was asked: ${registry.requests.join(", ")}\n${r.stderr}`);
  });

  test("…and a short name's create, list and push name that registry too", async () => {
    const env = { CORRAL_REGISTRY: registry.host };
    const created = await runCLI(daemon, ["create", "team/story", "-f", "Modelfile"], { cwd: work, env });
    assert.equal(created.code, 0, created.stderr);
    const listed = await runCLI(daemon, ["list"]);
    assert.match(listed.stdout, new RegExp(`^${registry.host}/team/story:latest\\s`, "m"), listed.stdout);
    const shown = await runCLI(daemon, ["show", "team/story"], { env });
    assert.equal(shown.code, 0, shown.stderr);
    registry.requests.length = 0;
    const pushed = await runCLI(daemon, ["push", "team/story", "--insecure"], { env });
    assert.equal(pushed.code, 1, "the registry refuses everything");
    assert.ok(registry.requests.some((q) => q.includes("/v2/team/story/")), `the registry was asked: ${registry.requests.join(", ")}\n${pushed.stderr}`);
    const removed = await runCLI(daemon, ["rm", "team/story"], { env });
    assert.equal(removed.stdout, "deleted 'team/story'\n", removed.stderr);
    assert.doesNotMatch((await runCLI(daemon, ["list"])).stdout, /team\/story/);
  });
});
