// Word wrap for a streamed answer (docs/daemon.md, "CLI"): text arrives a few characters at a
// time, and a line breaks at a word boundary 5 columns before the terminal width. On a terminal
// each character is shown as soon as it arrives; when a word runs past the limit the cursor goes
// back over it, the rest of the line is cleared and the word is written again on the next line.
// Anywhere else (a pipe, a test) there is no cursor to move, so the current word is held back
// until it is complete or has to move, and only plain text and newlines are written.

import { displayWidth } from "./render/table.ts";

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** Whether `text` is one user-perceived character (an emoji sequence, a letter with its marks). */
function isOneGrapheme(text: string): boolean {
  const it = graphemes.segment(text)[Symbol.iterator]();
  return !it.next().done && it.next().done === true;
}

/** Below this width wrapping is not attempted at all. */
const MIN_WIDTH = 10;
/** Lines break this many columns before the terminal width. */
const RIGHT_MARGIN = 5;
/** A word longer than the width minus this is broken where it stands instead of moved. */
const LONG_WORD_MARGIN = 10;

export interface WordWrapOptions {
  /** Terminal columns. */
  width: number;
  /** Show each character at once and fix lines up with cursor movement. */
  tty: boolean;
}

export class WordWrapper {
  private readonly width: number;
  private readonly tty: boolean;
  /** Columns used on the current line, including the current word. */
  private column = 0;
  /** The word being written: already shown on a terminal, held back otherwise. */
  private word = "";
  /** The last character written, which the next piece may still extend (an emoji arriving token by token). */
  private last = "";

  constructor(options: WordWrapOptions) {
    this.width = options.width;
    this.tty = options.tty;
  }

  /** The text to write for the next piece of the answer. */
  write(text: string): string {
    if (this.width < MIN_WIDTH) return text;
    const limit = this.width - RIGHT_MARGIN;
    let out = "";
    // Measured a character at a time as the terminal shows it, not a code point at a time.
    for (const { segment: ch } of graphemes.segment(text)) {
      const joined = this.last + ch;
      if (this.last !== "" && isOneGrapheme(joined)) {
        // The previous piece ended inside this character: only the change in width counts.
        this.column += displayWidth(joined) - displayWidth(this.last);
        this.last = joined;
        const inWord = this.word !== "";
        if (inWord) this.word += ch;
        if (this.tty || !inWord) out += ch;
        continue;
      }
      this.last = ch;
      // A tab counts as one column, as the line limit has always assumed.
      const w = ch === "\t" ? 1 : displayWidth(ch);
      if (ch === "\n" || ch === "\r" || ch === "\r\n") {
        out += this.release() + ch;
        this.column = 0;
        continue;
      }
      if (this.column + w > limit) {
        const wordWidth = displayWidth(this.word);
        if (wordWidth > this.width - LONG_WORD_MARGIN) {
          // Moving a word this long would not help: break it here.
          out += this.release() + "\n";
          this.column = 0;
        } else {
          // Off a terminal the word has not been written yet, so it simply follows the newline.
          if (this.tty) out += (wordWidth > 0 ? `\x1b[${wordWidth}D` : "") + "\x1b[K\n" + this.word;
          else out += "\n";
          this.column = wordWidth;
        }
        if (ch === " " || ch === "\t") {
          // The space that ran over ends the word; it starts the new line after it.
          out += this.release() + ch;
          this.column += w;
          continue;
        }
      }
      this.column += w;
      if (ch === " " || ch === "\t" || w >= 2) {
        // Wide characters (CJK) may break anywhere, so each ends a word.
        out += this.release() + ch;
      } else if (this.tty) {
        this.word += ch;
        out += ch;
      } else {
        this.word += ch;
      }
    }
    return out;
  }

  /** What is still held back at the end of the answer. */
  flush(): string {
    return this.release();
  }

  /** Ends the current word: the held-back text when not on a terminal. */
  private release(): string {
    const held = this.tty ? "" : this.word;
    this.word = "";
    return held;
  }
}
