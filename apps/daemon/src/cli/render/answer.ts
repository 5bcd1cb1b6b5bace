// How `corral run` shows a streamed answer (docs/daemon.md, "CLI"): a spinner on stderr until the
// first piece arrives, the model's thinking between `Thinking...` and `...done thinking.` (grey on
// a terminal, left out with --hidethinking), the answer itself word-wrapped when asked, and any
// tool call the model invents described in one line.

import { WordWrapper } from "../wordwrap.ts";
import { WaitSpinner } from "./spinner.ts";

const GREY = "\x1b[38;5;245m";
const BOLD = "\x1b[1m";
const RESET = "\x1b[0m";

const DEFAULT_WIDTH = 80;

/** What the printer writes to: process.stdout / process.stderr or anything shaped like them. */
export interface TextSink {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ToolCall {
  function: { name: string; arguments?: unknown };
}

export interface AnswerPiece {
  content: string;
  thinking?: string;
  tool_calls?: ToolCall[];
}

export interface AnswerPrinterOptions {
  out: TextSink;
  /** Where the waiting spinner goes; it is only drawn when this is a terminal. */
  err: TextSink;
  wordWrap: boolean;
  hideThinking: boolean;
}

export function thinkingOpening(tty: boolean): string {
  const text = "Thinking...\n";
  return tty ? GREY + BOLD + text + RESET + GREY : text;
}

export function thinkingClosing(tty: boolean): string {
  const text = "...done thinking.\n\n";
  return tty ? GREY + BOLD + text + RESET : text;
}

/** One line per call: `  Model called a non-existent function '<name>()' with arguments: <json>`. */
export function formatToolCalls(calls: readonly ToolCall[], tty: boolean): string {
  const lines = calls.map((c) => {
    const name = tty ? RESET + c.function.name + GREY + BOLD : c.function.name;
    const args = JSON.stringify(c.function.arguments ?? {});
    return `  Model called a non-existent function '${name}()' with arguments: ${tty ? RESET + args + GREY + BOLD : args}`;
  });
  const text = lines.join("\n");
  return tty ? GREY + BOLD + text + RESET : text;
}

export class AnswerPrinter {
  private readonly out: TextSink;
  private readonly tty: boolean;
  private readonly wordWrap: boolean;
  private readonly hideThinking: boolean;
  private readonly spinner: WaitSpinner;
  private wrapper: WordWrapper | undefined;
  private thinkingOpen = false;
  private thinkingEndsInNewline = true;
  private contentText = "";
  private thinkingText = "";

  constructor(options: AnswerPrinterOptions) {
    this.out = options.out;
    this.tty = options.out.isTTY === true;
    this.wordWrap = options.wordWrap;
    this.hideThinking = options.hideThinking;
    this.spinner = new WaitSpinner(options.err);
    this.wrapper = this.newWrapper();
  }

  /** The whole answer so far, without the thinking. */
  get content(): string {
    return this.contentText;
  }

  get thinking(): string {
    return this.thinkingText;
  }

  /** Shows the spinner until the first piece is printed. */
  waiting(): void {
    this.spinner.start();
  }

  piece(p: AnswerPiece): void {
    if (p.content !== "" || !this.hideThinking) this.spinner.stop();
    const thinking = p.thinking ?? "";
    if (thinking !== "") this.thinkingText += thinking;
    if (thinking !== "" && !this.hideThinking) {
      if (!this.thinkingOpen) {
        this.out.write(thinkingOpening(this.tty));
        this.thinkingOpen = true;
      }
      this.thinkingEndsInNewline = thinking.endsWith("\n");
      this.print(thinking);
    }
    const calls = p.tool_calls ?? [];
    if (this.thinkingOpen && (p.content !== "" || calls.length > 0)) {
      this.print(this.wrapper?.flush() ?? "", false);
      if (!this.thinkingEndsInNewline) this.out.write("\n");
      this.out.write(thinkingClosing(this.tty));
      this.thinkingOpen = false;
      this.wrapper = this.newWrapper();
    }
    this.contentText += p.content;
    this.print(p.content);
    if (calls.length > 0) this.out.write(formatToolCalls(calls, this.tty));
  }

  /** Writes what word wrap still holds and takes the spinner away. */
  finish(): void {
    this.spinner.stop();
    this.print(this.wrapper?.flush() ?? "", false);
  }

  private print(text: string, wrap = true): void {
    if (text === "") return;
    this.out.write(wrap && this.wrapper ? this.wrapper.write(text) : text);
  }

  private newWrapper(): WordWrapper | undefined {
    if (!this.wordWrap) return undefined;
    return new WordWrapper({ width: this.out.columns ?? DEFAULT_WIDTH, tty: this.tty });
  }
}

/** Prints a stored answer (a model's MESSAGE history) the way a streamed one is shown. */
export function printStoredAnswer(out: TextSink, text: string, wordWrap: boolean): void {
  const printer = new AnswerPrinter({ out, err: { write: () => undefined }, wordWrap, hideThinking: true });
  printer.piece({ content: text });
  printer.finish();
}
