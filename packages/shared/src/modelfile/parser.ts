// The Modelfile parser: the same character-level state machine as Ollama's, so every file Ollama
// accepts parses to the same commands here and every file it rejects fails with the same text
// (docs/daemon.md, "Modelfile").

import { isGoPrint, trimGoSpace } from "./gotext.ts";

export interface ModelfileCommand {
  /** "model" for FROM, the lower-cased keyword, the parameter name (case kept) for PARAMETER, "message" for MESSAGE. */
  name: string;
  /** The unquoted value; for MESSAGE "<role>: <content>". */
  args: string;
  /**
   * The line on which the command's keyword stands (1-based; CRLF counts as one line break, unlike
   * the line numbers in Ollama's error messages, which count CR and LF separately).
   */
  line: number;
}

export const INVALID_COMMAND =
  'command must be one of "from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", or "requires"';
export const INVALID_MESSAGE_ROLE = 'message role must be one of "system", "user", or "assistant"';
export const NO_FROM_LINE = "no FROM line";
export const UNEXPECTED_EOF = "unexpected EOF";

export class ModelfileError extends Error {
  /** Set for the errors Ollama numbers (invalid command, invalid role). */
  readonly line: number | undefined;
  /** Ollama's exact error text, without the line prefix. */
  readonly reason: string;
  /** The (editor) line where the unfinished command began, for `unexpected EOF` errors (Ollama does not print it). */
  readonly commandLine: number | undefined;

  constructor(reason: string, line?: number, commandLine?: number) {
    super(line === undefined ? reason : `(line ${line}): ${reason}`);
    this.name = "ModelfileError";
    this.reason = reason;
    this.line = line;
    this.commandLine = commandLine;
  }
}

export const MESSAGE_ROLES: readonly string[] = ["system", "user", "assistant"];

const COMMANDS = new Set(["from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", "requires"]);

type State = "nil" | "name" | "value" | "parameter" | "message" | "comment";

function isGoSpaceRune(ch: string): boolean {
  if (ch.length === 1 && ch > " " && ch < "\u0085") return false;
  return trimGoSpace(ch) === "";
}

/**
 * The runes of the word or value being read, with what the open-quote test needs kept up to date
 * as runes arrive: trimming and unquoting the whole value at every space would make long values
 * cost quadratic time.
 */
class RuneBuffer {
  text = "";
  /** Code-unit offsets of the text without leading and trailing space; start is -1 while it is all space. */
  private start = -1;
  private end = 0;
  /** The first code units from `start` on, and the last ones up to `end`. */
  private head = "";
  private tail = "";
  private last = "";

  add(ch: string): void {
    const at = this.text.length;
    this.text += ch;
    this.last = (this.last + ch).slice(-3);
    if (isGoSpaceRune(ch)) {
      if (this.start >= 0 && this.head.length < 3) this.head += ch;
      return;
    }
    if (this.start < 0) this.start = at;
    if (this.head.length < 3) this.head += ch;
    this.end = this.text.length;
    this.tail = this.last;
  }

  /** True exactly when unquoteModelfileValue(trimGoSpace(text)) is undefined. */
  quoteOpen(): boolean {
    if (this.start < 0) return false;
    const length = this.end - this.start;
    if (this.head.startsWith('"""')) return !(length >= 6 && this.tail === '"""');
    if (this.head.startsWith('"')) return !(length >= 2 && this.tail.endsWith('"'));
    return false;
  }
}

const isSpace = (ch: string): boolean => ch === " " || ch === "\t";
const isNewline = (ch: string): boolean => ch === "\r" || ch === "\n";
const isAlpha = (ch: string): boolean => (ch >= "a" && ch <= "z") || (ch >= "A" && ch <= "Z");
const isDigit = (ch: string): boolean => ch >= "0" && ch <= "9";

function decodeUtf16(bytes: Uint8Array, littleEndian: boolean): string {
  const units = new Uint16Array(bytes.length >> 1);
  for (let i = 0; i < units.length; i++) {
    const a = bytes[2 * i] ?? 0;
    const b = bytes[2 * i + 1] ?? 0;
    units[i] = littleEndian ? a | (b << 8) : (a << 8) | b;
  }
  let out = "";
  const CHUNK = 8192;
  for (let i = 0; i < units.length; i += CHUNK) out += String.fromCharCode(...units.subarray(i, i + CHUNK));
  // Unpaired surrogates decode to U+FFFD, as do a dangling odd byte.
  out = out.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
  return bytes.length % 2 === 1 ? out + "\ufffd" : out;
}

/** Decodes Modelfile bytes: UTF-8 with or without BOM, UTF-16 LE/BE only with a BOM. */
export function decodeModelfile(input: string | Uint8Array): string {
  if (typeof input === "string") return input.startsWith("\ufeff") ? input.slice(1) : input;
  const b = input;
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return new TextDecoder("utf-8", { ignoreBOM: true }).decode(b.subarray(3));
  if (b[0] === 0xfe && b[1] === 0xff) return decodeUtf16(b.subarray(2), false);
  if (b[0] === 0xff && b[1] === 0xfe) return decodeUtf16(b.subarray(2), true);
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(b);
}

/** Undoes `"…"` / `"""…"""` quoting; undefined while a quote is still open. */
export function unquoteModelfileValue(s: string): string | undefined {
  if (s.startsWith('"""')) return s.length >= 6 && s.endsWith('"""') ? s.slice(3, -3) : undefined;
  if (s.startsWith('"')) return s.length >= 2 && s.endsWith('"') ? s.slice(1, -1) : undefined;
  return s;
}

/** Splits MESSAGE args into role and content at the first ": ". */
export function splitMessageArgs(args: string): { role: string; content: string } {
  const i = args.indexOf(": ");
  return i < 0 ? { role: args, content: "" } : { role: args.slice(0, i), content: args.slice(i + 2) };
}

/**
 * Parses a Modelfile. Throws ModelfileError with Ollama's error text (docs/daemon.md, "Modelfile") on bad input,
 * including `no FROM line` when no FROM command is present.
 */
export function parseModelfile(input: string | Uint8Array): ModelfileCommand[] {
  const text = decodeModelfile(input);
  const commands: ModelfileCommand[] = [];
  let state: State = "nil";
  let line = 1;
  let buf = new RuneBuffer();
  // Like Ollama's, the command name survives from one command to the next; PARAMETER only sets
  // it once its own name is complete.
  let name = "";
  let role = "";
  let commandLine = 1;
  // The line as an editor shows it, for command.line.
  let editorLine = 1;
  let afterCR = false;

  for (const ch of text) {
    if (isNewline(ch)) {
      line++;
      if (ch === "\r" || !afterCR) editorLine++;
    }
    afterCR = ch === "\r";

    // What the rune does in the current state: the next state and whether the rune itself is
    // still a candidate for the buffer.
    let next: State = state;
    let keep = false;
    switch (state) {
      case "nil":
        if (ch === "#") next = "comment";
        else if (isSpace(ch) || isNewline(ch)) next = "nil";
        else {
          next = "name";
          keep = true;
        }
        break;
      case "name":
        if (isAlpha(ch)) {
          next = "name";
          keep = true;
        } else if (isSpace(ch)) next = "value";
        else throw new ModelfileError(INVALID_COMMAND, line);
        break;
      case "value":
        next = isSpace(ch) || isNewline(ch) ? "nil" : "value";
        keep = true;
        break;
      case "parameter":
        if (isAlpha(ch) || isDigit(ch) || ch === "_") {
          next = "parameter";
          keep = true;
        } else if (isSpace(ch)) next = "value";
        else throw new ModelfileError(`${UNEXPECTED_EOF}: ${buf.text}`, undefined, commandLine);
        break;
      case "message":
        if (isAlpha(ch)) {
          next = "message";
          keep = true;
        } else if (isSpace(ch)) next = "value";
        else throw new ModelfileError(`${UNEXPECTED_EOF}: ${buf.text}`, undefined, commandLine);
        break;
      case "comment":
        next = isNewline(ch) ? "nil" : "comment";
        break;
    }

    if (next !== state) {
      switch (state) {
        case "nil":
          commandLine = editorLine;
          break;
        case "name": {
          const word = buf.text.toLowerCase();
          if (!COMMANDS.has(word)) throw new ModelfileError(INVALID_COMMAND, line);
          if (word === "from") name = "model";
          else if (word === "parameter") next = "parameter";
          else {
            if (word === "message") next = "message";
            name = word;
          }
          break;
        }
        case "parameter":
          name = buf.text;
          break;
        case "message":
          if (!MESSAGE_ROLES.includes(buf.text)) throw new ModelfileError(INVALID_MESSAGE_ROLE, line);
          role = buf.text;
          break;
        case "value": {
          // An open quote, or mere whitespace, does not end the value: the rune joins it as is.
          if (buf.quoteOpen() || isSpace(ch)) {
            buf.add(ch);
            continue;
          }
          // Defined: the quote is not open.
          const value = unquoteModelfileValue(trimGoSpace(buf.text)) ?? "";
          commands.push({ name, args: role !== "" ? `${role}: ${value}` : value, line: commandLine });
          role = "";
          break;
        }
        case "comment":
          break;
      }
      buf = new RuneBuffer();
      state = next;
    }

    if (keep && isGoPrint(ch)) buf.add(ch);
  }

  switch (state) {
    case "nil":
    case "comment":
      break;
    case "value": {
      const value = unquoteModelfileValue(trimGoSpace(buf.text));
      if (value === undefined) throw new ModelfileError(UNEXPECTED_EOF, undefined, commandLine);
      commands.push({ name, args: role !== "" ? `${role}: ${value}` : value, line: commandLine });
      break;
    }
    default:
      throw new ModelfileError(UNEXPECTED_EOF, undefined, commandLine);
  }

  if (!commands.some((c) => c.name === "model")) throw new ModelfileError(NO_FROM_LINE);
  return commands;
}
