// `corral run MODEL [PROMPT...]` (docs/daemon.md, "CLI"): look the model up, then answer one
// prompt (given as words, piped on stdin, or both), print an embedding, or start the interactive
// session.

import { float32String } from "@corral/shared/gojson";
import { APIError, Client } from "../client.ts";
import { extractFileData } from "../image-files.ts";
import { CLIError } from "../errors.ts";
import { runInteractive } from "../interactive.ts";
import { qualify } from "../short-names.ts";
import type { ShowResponse } from "./models.ts";
import { printStoredAnswer } from "../render/answer.ts";
import {
  inferThink,
  loadBody,
  loadOrUnload,
  newRunOptions,
  parseFormatFlag,
  parseKeepAliveFlag,
  parseThinkFlag,
  printTimings,
  streamAnswer,
  type Message,
} from "../session.ts";

export interface RunFlags {
  keepalive?: string;
  verbose?: boolean;
  format?: string;
  nowordwrap?: boolean;
  /** For pulling a missing model from a plain-HTTP registry. */
  insecure?: boolean;
  think?: string | boolean;
  hidethinking?: boolean;
  truncate?: boolean;
  dimensions?: string;
  /** Start the interactive session even when stdin or stdout is not a terminal (scripted sessions). */
  interactive?: boolean;
}

/** Options that take a value as the next word, so that word is not a positional argument. */
const VALUE_OPTIONS = new Set(["--keepalive", "--format", "--dimensions"]);

/**
 * `--think` takes an optional value, so a parser that reads `--think why is the sky blue` takes
 * "why" as the value. Ollama's flag only takes a value written as `--think=value`; when the value
 * was a separate word that is not a think value, it goes back among the prompt words, in place.
 * `args` are the words after `run`; `positionals` are the model and prompt words as parsed.
 */
export function reclaimThinkWord(args: readonly string[], positionals: readonly string[], think: string | boolean | undefined): { think: string | boolean | undefined; positionals: string[] } {
  const unchanged = { think, positionals: [...positionals] };
  if (typeof think !== "string" || ["true", "false", "high", "medium", "low", "max"].includes(think)) return unchanged;
  let before = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") break;
    if (a === "--think") {
      if (args[i + 1] !== think) return unchanged;
      const out = [...positionals];
      out.splice(before, 0, think);
      return { think: true, positionals: out };
    }
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith("-")) before++;
  }
  return unchanged;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** The model's details; a model that is not here is pulled first (with --insecure when given), as Ollama's run does. */
async function showModel(client: Client, model: string, insecure: boolean): Promise<ShowResponse & { details: { parent_model?: string } }> {
  try {
    return await client.request("POST", "/api/show", { model });
  } catch (e) {
    if (!(e instanceof APIError && e.status === 404)) throw e;
  }
  const { pullCommand } = await import("./transfer.ts");
  await pullCommand(model, { insecure });
  return client.request("POST", "/api/show", { model });
}

export async function runCommand(modelArg: string, promptWords: string[], flags: RunFlags, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const runAt = argv.indexOf("run");
  const reclaimed = reclaimThinkWord(runAt >= 0 ? argv.slice(runAt + 1) : argv, [modelArg, ...promptWords], flags.think);
  const [typed = modelArg, ...words] = reclaimed.positionals;
  const model = qualify(typed);

  const o = newRunOptions(model);
  o.format = parseFormatFlag(flags.format);
  const thinkExplicit = reclaimed.think !== undefined;
  o.think = parseThinkFlag(reclaimed.think);
  o.hideThinking = flags.hidethinking === true;
  o.keepAlive = parseKeepAliveFlag(flags.keepalive);
  o.verbose = flags.verbose === true;
  let dimensions: number | undefined;
  if (flags.dimensions !== undefined) {
    dimensions = Number(flags.dimensions);
    if (!Number.isInteger(dimensions) || dimensions < 0) throw new CLIError(`invalid value for --dimensions: ${JSON.stringify(flags.dimensions)} (expected a whole number)`);
  }
  if (flags.interactive && words.length > 0) throw new CLIError("--interactive cannot be combined with a prompt");

  const client = new Client();
  await client.heartbeat();

  const prompts = [...words];
  let interactive = true;
  if (!flags.interactive && !process.stdin.isTTY) {
    const piped = await readStdin();
    if (piped.length > 0) prompts.unshift(piped);
    interactive = false;
  }
  o.prompt = prompts.join(" ");
  if (prompts.length > 0) interactive = false;
  if (!process.stdout.isTTY) interactive = false;
  if (flags.interactive) interactive = true;
  o.wordWrap = !flags.nowordwrap && process.stdout.isTTY === true;

  const info = await showModel(client, model, flags.insecure === true);
  o.think = inferThink(info.capabilities, o.think, thinkExplicit);
  o.parentModel = info.details.parent_model ?? "";
  o.loadedMessages = (info.messages ?? []).map((m): Message => ({ role: m.role, content: m.content }));

  if (info.capabilities?.includes("embedding")) {
    if (o.prompt === "") throw new CLIError(`embedding models require input text. Usage: corral run ${model} "your text here"`);
    const body: Record<string, unknown> = { model, input: o.prompt };
    if (o.keepAlive !== undefined) body["keep_alive"] = o.keepAlive;
    if (flags.truncate !== undefined) body["truncate"] = flags.truncate;
    if (dimensions) body["dimensions"] = dimensions;
    const r = await client.request<{ embeddings?: number[][] }>("POST", "/api/embed", body);
    const first = r.embeddings?.[0];
    if (!first) throw new CLIError("no embeddings returned");
    process.stdout.write(`[${first.map(float32String).join(",")}]\n`);
    return;
  }
  if (info.capabilities?.includes("image")) throw new CLIError("image generation models are not currently supported");
  // A vision model's prompts may name image files, as with Ollama's CLI.
  o.multiModal = info.capabilities?.includes("vision") === true;
  if (o.multiModal && !interactive) ({ prompt: o.prompt, images: o.images } = await extractFileData(o.prompt, process.stderr));

  const io = { out: process.stdout, err: process.stderr };
  if (interactive) {
    await loadOrUnload(client, loadBody(o));
    for (const m of o.loadedMessages) {
      if (m.role === "user") process.stdout.write(`>>> ${m.content}\n`);
      else if (m.role === "assistant") {
        printStoredAnswer(process.stdout, m.content, o.wordWrap);
        process.stdout.write("\n\n");
      }
    }
    await runInteractive(client, o, { thinkExplicit, input: process.stdin, ...io });
    return;
  }

  const answer = await streamAnswer(client, "generate", o, io);
  if (answer.canceled) return;
  if (o.prompt !== "") process.stdout.write("\n\n");
  if (!answer.final?.done) return;
  if (o.verbose) printTimings(process.stderr, answer.final);
}
