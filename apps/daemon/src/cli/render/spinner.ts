// The CLI's one spinner: its frames and pace, used by the progress list (a spinner after a status
// line) and by the bare spinner that holds the place of an answer until it starts.

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"] as const;
/** Milliseconds between frames. */
export const SPINNER_FRAME_MS = 100;

/** The glyph of the `n`th frame. */
export function spinnerFrame(n: number): string {
  return FRAMES[n % FRAMES.length]!;
}

/** The glyph `elapsedMs` after a spinner started. */
export function spinnerFrameAt(elapsedMs: number): string {
  return spinnerFrame(Math.floor(elapsedMs / SPINNER_FRAME_MS));
}

/** What a spinner draws on: process.stderr, or anything shaped like it. */
export interface SpinnerSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * A spinner without text on a terminal, erased (not left behind) when stopped, so the answer
 * starts where the spinner was. Off a terminal it draws nothing.
 */
export class WaitSpinner {
  private timer: ReturnType<typeof setInterval> | undefined;
  private frame = 0;

  constructor(private readonly sink: SpinnerSink) {}

  start(): void {
    if (!this.sink.isTTY || this.timer) return;
    this.draw();
    this.timer = setInterval(() => this.draw(), SPINNER_FRAME_MS);
    this.timer.unref();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.sink.write("\r\x1b[K");
  }

  private draw(): void {
    this.sink.write(`\r${spinnerFrame(this.frame++)}`);
  }
}
