// Stop sequences matched on the text a model writes, as Ollama matches them: the pieces are joined
// and searched, so a stop that spans tokens, starts with a space or ends inside a word fires as
// written. node-llama-cpp's own triggers compare token texts, in which SentencePiece vocabularies
// carry a word's leading space in a form that never equals " Lily", and cut a space before a stop
// found inside a word. Text that could be the start of a stop is held back until the next piece
// shows it is not; the text before a stop is written, the stop and whatever follows are not.

export class StopMatcher {
  private pending = "";
  private stopped = false;

  constructor(
    private readonly stops: readonly string[],
    private readonly emit: (text: string) => void,
  ) {}

  /** Whether a stop sequence has been found. */
  get done(): boolean {
    return this.stopped;
  }

  /** Takes the next piece; true when it completed a stop sequence (generation should end). */
  push(piece: string): boolean {
    if (this.stopped) return true;
    this.pending += piece;
    let at = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      if (at > 0) this.emit(this.pending.slice(0, at));
      this.pending = "";
      this.stopped = true;
      return true;
    }
    const hold = this.heldBack();
    if (this.pending.length > hold) this.emit(this.pending.slice(0, this.pending.length - hold));
    this.pending = this.pending.slice(this.pending.length - hold);
    return false;
  }

  /** Writes what was held back (generation ended without a stop). */
  flush(): void {
    if (!this.stopped && this.pending) this.emit(this.pending);
    this.pending = "";
  }

  /** The longest end of the pending text that a stop sequence starts with. */
  private heldBack(): number {
    return Math.max(0, ...this.stops.map((s) => partialAtEnd(this.pending, s)));
  }
}

/** The length of the longest end of `text` that `s` starts with: `s` may be arriving there. */
export function partialAtEnd(text: string, s: string): number {
  for (let k = Math.min(s.length - 1, text.length); k > 0; k--) {
    if (text.endsWith(s.slice(0, k))) return k;
  }
  return 0;
}
