// The interactive session of `corral run` (docs/daemon.md, "CLI"): a `>>> ` prompt whose lines
// are chat turns or slash commands. The whole conversation goes with every turn, so the model sees
// the session's history; /set changes what later turns send, /save keeps the session as a model.
//
// Input comes through node:readline. On a terminal it edits lines, keeps history and turns Ctrl+C
// into an interrupt; while an answer streams the terminal is back in its normal mode, so Ctrl+C is a
// signal that stops the answer. From a pipe (a scripted session) lines are read as they come and no
// prompt is drawn.

import { createInterface, type Interface } from "node:readline";
import { goQuote, formatGoValue } from "@corral/shared/modelfile/gotext";
import { formatParams, ParameterError } from "@corral/shared/modelfile/params";
import { ModelName } from "@corral/shared/name";
import { APIError, type Client } from "./client.ts";
import { listCommand, showCommand, type ShowResponse } from "./commands/models.ts";
import { extractFileData, extractFileNames } from "./image-files.ts";
import { InputAssembler } from "./multiline.ts";
import type { TextSink } from "./render/answer.ts";
import {
  createBody,
  inferThink,
  isThinkError,
  loadBody,
  loadOrUnload,
  printTimings,
  setSystem,
  streamAnswer,
  type Message,
  type RunOptions,
  type ThinkValue,
} from "./session.ts";
import { parseSlashCommand, type SlashCommand } from "./slash-command.ts";
import { qualify } from "./short-names.ts";

const PROMPT = ">>> ";
const ALT_PROMPT = "... ";
const PLACEHOLDER = "Send a message (/? for help)";
const ALT_PLACEHOLDER = "Press Enter to send";
const GREY = "\x1b[38;5;245m";
const RESET = "\x1b[0m";

const USAGE = `Available Commands:
  /set            Set session variables
  /show           Show model information
  /load <model>   Load a session or model
  /save <model>   Save your current session
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use """ to begin a multi-line message.

`;

const USAGE_SET = `Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set history           Enable history
  /set nohistory         Disable history
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think             Enable thinking
  /set nothink           Disable thinking

`;

const USAGE_SHORTCUTS = `Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
   Alt + b            Move back (left) one word
   Alt + f            Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit corral (/bye)

`;

const USAGE_SHOW = `Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template

`;

// Only the most common parameters are listed.
const USAGE_PARAMETERS = `Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter num_gpu <int>          The number of layers to send to the GPU
  /set parameter stop <string> <string> ...   Set the stop parameters

`;

/** A terminal stdin can switch raw mode; a pipe cannot. */
type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };

type ReadResult = { kind: "line"; line: string } | { kind: "interrupt"; line: string } | { kind: "eof" };

/** Lines from readline, one at a time, whether they are typed or arrive in bulk from a pipe. */
class LineReader {
  private readonly rl: Interface;
  private readonly input: Input;
  private readonly out: TextSink;
  private readonly tty: boolean;
  private readonly queue: ReadResult[] = [];
  private closed = false;
  private wake: (() => void) | undefined;
  private placeholderShown = false;
  history = true;

  constructor(input: Input, out: TextSink) {
    this.input = input;
    this.out = out;
    this.tty = input.isTTY === true && out.isTTY === true;
    this.rl = createInterface({
      input,
      ...(this.tty ? { output: out as NodeJS.WritableStream } : {}),
      terminal: this.tty,
      historySize: 1000,
    });
    this.rl.on("line", (line) => {
      if (this.tty) {
        // Keys typed while an answer streams wait in the terminal, not in readline.
        this.rl.pause();
        const history = (this.rl as unknown as { history?: string[] }).history;
        if (!this.history && history?.[0] === line) history.shift();
      }
      this.push({ kind: "line", line });
    });
    this.rl.on("SIGINT", () => {
      const line = this.rl.line;
      // Ctrl+E then Ctrl+U: empty the line being edited.
      this.rl.write(null, { ctrl: true, name: "e" });
      this.rl.write(null, { ctrl: true, name: "u" });
      this.rl.pause();
      this.push({ kind: "interrupt", line });
    });
    this.rl.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
    if (this.tty) {
      // Runs before readline's own handler: the first key clears the placeholder text.
      input.prependListener("keypress", () => {
        if (!this.placeholderShown) return;
        this.placeholderShown = false;
        this.out.write("\x1b[K");
      });
    }
  }

  async read(continuing: boolean): Promise<ReadResult> {
    for (;;) {
      const next = this.queue.shift();
      if (next) return next;
      if (this.closed) return { kind: "eof" };
      if (this.tty) {
        this.input.setRawMode?.(true);
        this.rl.setPrompt(continuing ? ALT_PROMPT : PROMPT);
        this.rl.prompt();
        const placeholder = continuing ? ALT_PLACEHOLDER : PLACEHOLDER;
        this.out.write(`${GREY}${placeholder}${RESET}\x1b[${placeholder.length}D`);
        this.placeholderShown = true;
      } else {
        this.rl.resume();
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  /** While an answer streams: the terminal in its normal mode, so Ctrl+C is a signal. */
  suspend(): void {
    this.rl.pause();
    if (this.tty) this.input.setRawMode?.(false);
  }

  close(): void {
    this.rl.close();
  }

  private push(r: ReadResult): void {
    this.queue.push(r);
    this.wake?.();
  }
}

export interface InteractiveContext {
  /** --think was given, so the model's capabilities do not decide it. */
  thinkExplicit: boolean;
  input: Input;
  out: TextSink;
  err: TextSink;
}

class Session {
  private readonly reader: LineReader;
  private readonly assembler = new InputAssembler();
  private thinkExplicit: boolean;

  constructor(
    private readonly client: Client,
    private o: RunOptions,
    private readonly ctx: InteractiveContext,
  ) {
    this.thinkExplicit = ctx.thinkExplicit;
    this.reader = new LineReader(ctx.input, ctx.out);
  }

  async run(): Promise<void> {
    try {
      for (;;) {
        const r = await this.reader.read(this.assembler.continuing);
        if (r.kind === "eof") {
          this.print("\n");
          return;
        }
        if (r.kind === "interrupt") {
          this.print(r.line === "" ? "\nUse Ctrl + d or /bye to exit.\n" : "\n");
          this.assembler.reset();
          continue;
        }
        const event = this.assembler.push(r.line);
        if (event.kind === "system") {
          setSystem(this.o, event.text);
          this.print("Set system message.\n");
        } else if (event.kind === "command" && this.namesFile(event.line)) {
          await this.send(event.line);
        } else if (event.kind === "command") {
          if ((await this.command(parseSlashCommand(event.line))) === "bye") return;
        } else if (event.kind === "message") {
          await this.send(event.text);
        }
      }
    } finally {
      this.reader.close();
    }
  }

  private print(text: string): void {
    this.ctx.out.write(text);
  }

  private usage(text: string): void {
    this.ctx.err.write(text);
  }

  /** A line starting with an image path is a message, not a command (a vision model's session only). */
  private namesFile(line: string): boolean {
    const first = line.split(/\s+/)[0]!;
    return this.o.multiModal && extractFileNames(line).some((f) => f.startsWith(first));
  }

  private async send(text: string): Promise<void> {
    if (this.o.multiModal) {
      const { prompt, images } = await extractFileData(text, this.ctx.err);
      this.o.messages.push({ role: "user", content: prompt, ...(images.length > 0 ? { images } : {}) });
    } else this.o.messages.push({ role: "user", content: text });
    this.reader.suspend();
    let answer;
    try {
      answer = await streamAnswer(this.client, "chat", this.o, this.ctx);
    } catch (e) {
      if (!isThinkError(e)) throw e;
      this.print(`error: ${(e as Error).message}\n`);
      return;
    }
    if (answer.canceled) {
      // The question stays in the history without an answer, as it was asked.
      if (answer.content !== "") this.print("\n\n");
      return;
    }
    this.print("\n\n");
    if (this.o.verbose) printTimings(this.ctx.err, answer.final);
    const reply: Message = { role: answer.role, content: answer.content };
    if (answer.thinking) reply.thinking = answer.thinking;
    this.o.messages.push(reply);
  }

  private async command(cmd: SlashCommand): Promise<"bye" | undefined> {
    switch (cmd.name) {
      case "bye":
        return "bye";
      case "list":
        await listCommand(cmd.prefix);
        return;
      case "load":
        if (!cmd.model) this.print("Usage:\n  /load <modelname>\n");
        else await this.load(cmd.model);
        return;
      case "save":
        if (!cmd.model) this.print("Usage:\n  /save <modelname>\n");
        else await this.save(cmd.model);
        return;
      case "clear":
        this.o.messages = this.o.system ? [{ role: "system", content: this.o.system }] : [];
        this.print("Cleared session context\n");
        return;
      case "set-usage":
        this.usage(USAGE_SET);
        return;
      case "set-history":
        this.reader.history = cmd.on;
        return;
      case "set-wordwrap":
        this.o.wordWrap = cmd.on;
        this.print(cmd.on ? "Set 'wordwrap' mode.\n" : "Set 'nowordwrap' mode.\n");
        return;
      case "set-verbose":
        this.o.verbose = cmd.on;
        this.print(cmd.on ? "Set 'verbose' mode.\n" : "Set 'quiet' mode.\n");
        return;
      case "set-think":
        this.o.think = cmd.on ? ((cmd.level ?? true) as ThinkValue) : false;
        this.thinkExplicit = true;
        await this.warnIfCannotThink();
        if (!cmd.on) this.print("Set 'nothink' mode.\n");
        else this.print(cmd.level ? `Set 'think' mode to '${cmd.level}'.\n` : "Set 'think' mode.\n");
        return;
      case "set-format":
        if (cmd.format === undefined) {
          this.o.format = undefined;
          this.print("Disabled format.\n");
        } else if (cmd.format !== "json") {
          this.print("Invalid or missing format. For 'json' mode use '/set format json'\n");
        } else {
          this.o.format = "json";
          this.print("Set format to 'json' mode.\n");
        }
        return;
      case "set-parameter":
        this.setParameter(cmd.parameter, cmd.values);
        return;
      case "set-system":
        if (cmd.text === undefined) {
          this.usage(USAGE_SET);
          return;
        }
        {
          const event = this.assembler.startSystem(cmd.text);
          if (event.kind === "system") {
            setSystem(this.o, event.text);
            this.print("Set system message.\n");
          }
        }
        return;
      case "set-unknown":
        this.print(`Unknown command '/set ${cmd.word}'. Type /? for help\n`);
        return;
      case "show":
        if (!cmd.field) this.usage(USAGE_SHOW);
        else await this.show(cmd.field);
        return;
      case "show-unknown":
        // The model is asked first, as for any /show, so a daemon that went away is noticed here too.
        await this.showResponse();
        this.print(`Unknown command '/show ${cmd.word}'. Type /? for help\n`);
        return;
      case "help":
        if (cmd.topic === undefined) this.usage(USAGE);
        else if (cmd.topic === "set") this.usage(USAGE_SET);
        else if (cmd.topic === "show") this.usage(USAGE_SHOW);
        else if (cmd.topic === "shortcuts") this.usage(USAGE_SHORTCUTS);
        return;
      case "unknown":
        this.print(`Unknown command '${cmd.word}'. Type /? for help\n`);
        return;
    }
  }

  private setParameter(name: string | undefined, values: string[]): void {
    if (name === undefined) {
      this.usage(USAGE_PARAMETERS);
      return;
    }
    let typed: Record<string, unknown>;
    try {
      typed = formatParams({ [name]: values });
    } catch (e) {
      if (!(e instanceof ParameterError)) throw e;
      this.print(`Couldn't set parameter: ${goQuote(e.reason)}\n`);
      return;
    }
    this.print(`Set parameter '${name}' to '${values.join(", ")}'\n`);
    this.o.options[name] = typed[name];
  }

  private async showResponse(): Promise<ShowResponse> {
    try {
      return await this.client.request<ShowResponse>("POST", "/api/show", {
        model: this.o.model,
        ...(this.o.system ? { system: this.o.system } : {}),
        options: Object.fromEntries(Object.entries(this.o.options).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])),
      });
    } catch (e) {
      this.print("error: couldn't get model\n");
      throw e;
    }
  }

  private async show(field: NonNullable<Extract<SlashCommand, { name: "show" }>["field"]>): Promise<void> {
    if (field === "info") {
      await showCommand(this.o.model, {});
      return;
    }
    const r = await this.showResponse();
    switch (field) {
      case "license":
        this.print(r.license ? `${r.license}\n` : "No license was specified for this model.\n");
        return;
      case "modelfile":
        this.print(`${r.modelfile}\n`);
        return;
      case "parameters": {
        let out = "Model defined parameters:\n";
        if (!r.parameters) out += "  No additional parameters were specified for this model.\n";
        else for (const line of r.parameters.split("\n")) out += `  ${line}\n`;
        out += "\n";
        const entries = Object.entries(this.o.options);
        if (entries.length > 0) {
          out += "User defined parameters:\n";
          for (const [k, v] of entries) out += `  ${k.padEnd(30)} ${formatGoValue(v)}\n`;
          out += "\n";
        }
        this.print(out);
        return;
      }
      case "system": {
        const system = this.o.system || r.system || "";
        this.print(system ? `${system}\n\n` : "No system message was specified for this model.\n");
        return;
      }
      case "template":
        this.print(r.template ? `${r.template}\n` : "No prompt template was specified for this model.\n");
        return;
    }
  }

  private async load(model: string): Promise<void> {
    const before = { ...this.o, messages: [...this.o.messages], loadedMessages: [...this.o.loadedMessages], options: { ...this.o.options } };
    this.o.model = qualify(model);
    this.o.messages = [];
    this.o.loadedMessages = [];
    this.print(`Loading model '${model}'\n`);
    const notFound = (e: unknown): boolean => e instanceof APIError && e.message.includes("not found");
    let info: ShowResponse & { details: { parent_model?: string } };
    try {
      info = await this.client.request("POST", "/api/show", { model: this.o.model });
    } catch (e) {
      if (!notFound(e)) throw e;
      this.print(`Couldn't find model '${model}'\n`);
      this.o = before;
      return;
    }
    this.o.parentModel = info.details.parent_model ?? "";
    this.o.loadedMessages = (info.messages ?? []).map((m) => ({ role: m.role, content: m.content }));
    this.o.think = inferThink(info.capabilities, this.o.think, this.thinkExplicit);
    try {
      this.reader.suspend();
      await loadOrUnload(this.client, loadBody(this.o), this.ctx.err);
    } catch (e) {
      if (notFound(e)) {
        this.print(`Couldn't find model '${model}'\n`);
        this.o = before;
        return;
      }
      if (isThinkError(e)) {
        this.print(`error: ${(e as Error).message}\n`);
        return;
      }
      throw e;
    }
  }

  private async save(name: string): Promise<void> {
    if (!ModelName.parse(name).isValid()) {
      this.print(`error: The model name '${name}' is invalid\n`);
      return;
    }
    try {
      for await (const _ of this.client.stream("/api/create", createBody(qualify(name), this.o))) {
        // Saving shows no progress; only success or failure.
      }
    } catch (e) {
      if (e instanceof APIError && e.message.includes("invalid model name")) {
        this.print(`error: The model name '${name}' is invalid\n`);
        return;
      }
      throw e;
    }
    this.print(`Created new model '${name}'\n`);
  }

  private async warnIfCannotThink(): Promise<void> {
    try {
      const r = await this.client.request<ShowResponse>("POST", "/api/show", { model: this.o.model });
      if (!r.capabilities?.includes("thinking")) this.ctx.err.write(`warning: model ${JSON.stringify(this.o.model)} does not support thinking output\n`);
    } catch {
      // Only a warning: the daemon says more when the next turn is sent.
    }
  }
}

/** Runs the session until /bye, /exit or end of input. */
export async function runInteractive(client: Client, o: RunOptions, ctx: InteractiveContext): Promise<void> {
  await new Session(client, o, ctx).run();
}
