// The `corral` command line: a thin client of the daemon's API (and `serve`, which is the daemon).
// Each command's module is imported when that command runs, so a command loads only what it uses
// (`corral list` never loads the runner, `corral serve` never loads the interactive session).
import { Command, CommanderError, Option } from "commander";
import { VERSION } from "../version.ts";
import { ConfigError, type HostAddress } from "../config.ts";
import { Client, APIError, ConnectionError } from "./client.ts";
import { CLIError } from "./errors.ts";
import { unknownCommandMessage } from "./unknown-command.ts";
import type { FsckFlags } from "./commands/fsck.ts";
import type { RunFlags } from "./commands/run.ts";

const program = new Command("corral")
  .description("Large language models on your machine, shared through your team's registry")
  .option("-v, --version", "Show version information")
  .showHelpAfterError()
  .exitOverride();

program.action(async (opts: { version?: boolean }) => {
  // Words that name no command reach here; cobra answers them with this error, and so does corral.
  const [typed] = program.args;
  if (typed !== undefined) throw new CLIError(unknownCommandMessage(typed, program.commands.map((c) => c.name())));
  if (!opts.version) {
    program.outputHelp();
    return;
  }
  const client = new Client();
  try {
    const { version } = await client.request<{ version: string }>("GET", "/api/version");
    process.stdout.write(`corral version is ${version}\n`);
    if (version !== VERSION) process.stderr.write(`Warning: client version is ${VERSION}\n`);
  } catch {
    process.stderr.write("Warning: could not connect to a running Corral instance\n");
    process.stderr.write(`Warning: client version is ${VERSION}\n`);
  }
});

program
  .command("serve")
  .alias("start")
  .description("Start the daemon (CORRAL_HOST, default 127.0.0.1:11434; models in CORRAL_MODELS)")
  .action(async () => {
    const [{ startServer }, { daemonConfig }] = await Promise.all([import("../api/serve.ts"), import("../config.ts")]);
    const config = daemonConfig();
    const server = await startServer(config).catch((e: unknown) => {
      throw listenFailure(e, config.host) ?? e;
    });
    const stop = (): void => {
      void server.close().then(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });

program
  .command("create")
  .description("Create a model from a Modelfile")
  .argument("<model>", "name of the new model")
  .option("-f, --file <path>", "name of the Modelfile (default \"Modelfile\")")
  .option("-q, --quantize <type>", "quantize the model to this level (e.g. q4_K_M)")
  .action(async (model: string, opts: { file?: string; quantize?: string }) => (await import("./commands/create.ts")).createCommand(model, opts));

program
  .command("show")
  .description("Show information for a model")
  .argument("<model>")
  .option("--license", "show the license of a model")
  .option("--modelfile", "show the Modelfile of a model")
  .option("--parameters", "show the parameters of a model")
  .option("--template", "show the template of a model")
  .option("--system", "show the system message of a model")
  .option("-v, --verbose", "show detailed model information")
  .action(async (model: string, opts: Record<string, boolean>) => (await import("./commands/models.ts")).showCommand(model, opts));

program
  .command("list")
  .alias("ls")
  .description("List models")
  .argument("[prefix]")
  .action(async (prefix?: string) => (await import("./commands/models.ts")).listCommand(prefix));

program
  .command("run")
  .description("Run a model")
  .argument("<model>")
  .argument("[prompt...]")
  .option("--keepalive <duration>", "Duration to keep a model loaded (e.g. 5m)")
  .option("--verbose", "Show timings for response")
  .option("--insecure", "Use an insecure registry")
  .option("--nowordwrap", "Don't wrap words to the next line automatically")
  .option("--format <format>", "Response format (e.g. json)")
  .option("--think [value]", "Enable thinking mode: true/false or high/medium/low for supported models")
  .option("--hidethinking", "Hide thinking output (if provided)")
  .option("--truncate", "For embedding models: truncate inputs exceeding context length")
  .option("--dimensions <n>", "Truncate output embeddings to specified dimension (embedding models only)")
  .addOption(new Option("--interactive", "Start the interactive session even when stdin or stdout is not a terminal").hideHelp())
  .action(async (model: string, prompt: string[], opts: RunFlags) => (await import("./commands/run.ts")).runCommand(model, prompt, opts));

program
  .command("stop")
  .description("Stop a running model")
  .argument("<model>")
  .action(async (model: string) => (await import("./commands/ps.ts")).stopCommand(model));

program
  .command("ps")
  .description("List running models")
  .argument("[prefix]")
  .action(async (prefix?: string) => (await import("./commands/ps.ts")).psCommand(prefix));

program
  .command("cp")
  .description("Copy a model")
  .argument("<source>")
  .argument("<destination>")
  .action(async (source: string, destination: string) => (await import("./commands/models.ts")).copyCommand(source, destination));

program
  .command("pull")
  .description("Pull a model from a registry")
  .argument("<model>")
  .option("--insecure", "use an insecure registry (plain HTTP)")
  .action(async (model: string, opts: { insecure?: boolean }) => (await import("./commands/transfer.ts")).pullCommand(model, opts));

program
  .command("push")
  .description("Push a model to a registry")
  .argument("<model>")
  .option("--insecure", "use an insecure registry (plain HTTP)")
  .action(async (model: string, opts: { insecure?: boolean }) => (await import("./commands/transfer.ts")).pushCommand(model, opts));

program
  .command("key")
  .description("Print this machine's public key, to register on a registry")
  .action(async () => (await import("./commands/key.ts")).keyCommand());

program
  .command("login")
  .description("Print a one-time link that signs a browser in to a registry's web catalog with this machine's key")
  .argument("<registry>", "the registry: host[:port] or http(s)://host[:port]")
  .option("--insecure", "use an insecure registry (plain HTTP)")
  .action(async (registry: string, opts: { insecure?: boolean }) => (await import("./commands/login.ts")).loginCommand(registry, opts));

program
  .command("rm")
  .description("Remove a model")
  .argument("<model...>")
  .action(async (models: string[]) => (await import("./commands/models.ts")).removeCommand(models));

program
  .command("fsck")
  .description("Check the model store (CORRAL_MODELS) for missing or damaged blobs and leftovers; --repair fixes them")
  .option("--repair", "remove broken manifests, damaged blobs, temporary files and unused blobs")
  .option("--quick", "compare blob sizes instead of hashing every blob")
  .option("--json", "print the report as JSON")
  .action(async (opts: FsckFlags) => (await import("./commands/fsck.ts")).fsckCommand(opts));

program
  .command("help")
  .description("Help about any command")
  .argument("[command]")
  .action((name?: string) => {
    if (name === undefined) return program.help();
    const command = program.commands.find((c) => c.name() === name || c.aliases().includes(name));
    if (!command) {
      // As cobra: the topic, then the usage, on stderr, and not a failure.
      process.stderr.write(`Unknown help topic [\`${name}\`]\n`);
      program.outputHelp({ error: true });
      return;
    }
    command.help();
  });

// After the commands: they would inherit it, and only the root takes words it does not know (to
// name them in its error).
program.helpCommand(false).allowExcessArguments(true);

/** A failure to listen where CORRAL_HOST says, as one line naming it, or undefined for any other error. */
function listenFailure(e: unknown, host: HostAddress): CLIError | undefined {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof Error && /^listen tcp .*: address already in use/.test(err.message)) return new CLIError(err.message);
  if (err.syscall !== "listen" && err.syscall !== "getaddrinfo") return undefined;
  const addr = `${host.host.includes(":") ? `[${host.host}]` : host.host}:${host.port}`;
  return new CLIError(`CORRAL_HOST: cannot listen on ${addr}: ${err.message}`);
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    const known = e instanceof CLIError || e instanceof APIError || e instanceof ConnectionError || e instanceof ConfigError;
    process.stderr.write(`Error: ${known ? (e as Error).message : (e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  }
}

await main();
