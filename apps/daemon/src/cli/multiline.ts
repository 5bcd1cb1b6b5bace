// The interactive session's input, line by line (docs/daemon.md, "CLI"): a line that starts with
// `"""` opens a block that the first line ending in `"""` closes, and the block's lines become one
// message joined with "\n". `/set system """…` opens the same kind of block for a system message.
// Any other line is a message of its own, or a slash command when it starts with "/".

const QUOTES = '"""';

export type InputEvent =
  /** The line went into an open block; ask for the next one with the continuation prompt. */
  | { kind: "more" }
  /** A complete user message. */
  | { kind: "message"; text: string }
  /** A complete system message from a `/set system """` block. */
  | { kind: "system"; text: string }
  /** A line starting with "/" outside any block. */
  | { kind: "command"; line: string }
  /** Nothing to do (an empty line). */
  | { kind: "none" };

export class InputAssembler {
  private lines: string[] = [];
  private block: "message" | "system" | undefined;

  /** Inside a block, where the continuation prompt is shown. */
  get continuing(): boolean {
    return this.block !== undefined;
  }

  push(line: string): InputEvent {
    if (this.block) {
      const closed = line.endsWith(QUOTES);
      const text = closed ? line.slice(0, -QUOTES.length) : line;
      // The text beside a closing `"""` is a line of the block only when there is some.
      if (!closed || text !== "") this.lines.push(text);
      if (!closed) return { kind: "more" };
      return this.finish(this.block);
    }
    if (line.startsWith(QUOTES)) {
      const rest = line.slice(QUOTES.length);
      if (rest.endsWith(QUOTES)) return this.single(rest.slice(0, -QUOTES.length));
      this.open("message", rest);
      return { kind: "more" };
    }
    if (line.startsWith("/")) return { kind: "command", line };
    return this.single(line);
  }

  /**
   * Starts a system message from the text after `/set system`: a complete message unless it opens
   * a `"""` block that it does not close.
   */
  startSystem(text: string): InputEvent {
    if (!text.startsWith(QUOTES)) return { kind: "system", text };
    const rest = text.slice(QUOTES.length);
    if (rest.endsWith(QUOTES)) return { kind: "system", text: rest.slice(0, -QUOTES.length) };
    this.open("system", rest);
    return { kind: "more" };
  }

  /** Drops a half-typed block (Ctrl+C). */
  reset(): void {
    this.lines = [];
    this.block = undefined;
  }

  private open(block: "message" | "system", first: string): void {
    this.block = block;
    // The text beside an opening `"""` is a line of the block only when there is some.
    this.lines = first === "" ? [] : [first];
  }

  private single(text: string): InputEvent {
    return text === "" ? { kind: "none" } : { kind: "message", text };
  }

  private finish(block: "message" | "system"): InputEvent {
    const text = this.lines.join("\n");
    this.reset();
    if (block === "system") return { kind: "system", text };
    return this.single(text);
  }
}
