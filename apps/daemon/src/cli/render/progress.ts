// The CLI's progress display on stderr (docs/daemon.md, "CLI"): a list of spinners and
// transfer bars. On a terminal the whole list is redrawn in place ten times a second, and lines
// that are finished at the top of the list are written out for good so the live area stays small.
// Anywhere else (a pipe, a log file, a test) each status line is printed once when it appears and a
// bar once when it completes, so the output reads as a plain log.

import { createLogUpdate } from "log-update";
import { goFixed, humanBytes, humanDuration } from "@corral/shared/format";
import { SPINNER_FRAME_MS, spinnerFrameAt } from "./spinner.ts";

const DEFAULT_WIDTH = 80;

/** What the progress display writes to: process.stderr, or any stream with the same shape. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Redraw in place; defaults to the stream's isTTY. */
  tty?: boolean;
  /** Milliseconds clock; tests pass a fake one. */
  now?: () => number;
}

interface State {
  /** The line as drawn now, for a terminal of `width` columns. */
  line(width: number, now: number): string;
  readonly finished: boolean;
}

export class Spinner implements State {
  private label: string;
  private printed: string | undefined;
  private ended = false;
  private readonly started: number;

  constructor(
    text: string,
    private readonly owner: Progress,
  ) {
    this.label = text;
    this.started = owner.now();
  }

  get text(): string {
    return this.label;
  }

  get finished(): boolean {
    return this.ended;
  }

  setText(text: string): void {
    this.label = text;
  }

  /** Freezes the line without its spinner glyph. Idempotent. */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    this.owner.changed(this);
  }

  line(_width: number, now: number): string {
    const text = this.label.trim();
    if (this.ended) return text;
    const frame = spinnerFrameAt(now - this.started);
    return text ? `${text} ${frame}` : frame;
  }

  /** For the plain log: the text when it differs from what was printed last, else undefined. */
  unprinted(): string | undefined {
    const text = this.label.trim();
    if (text === this.printed) return undefined;
    this.printed = text;
    return text;
  }
}

/** The rate window holds this many samples, one per second at most: about the last ten seconds. */
const RATE_WINDOW_SAMPLES = 10;
const RATE_SAMPLE_MS = 1000;

export class Bar implements State {
  private completedBytes: number;
  private ended = false;
  private readonly initial: number;
  private readonly started: number;
  private stoppedAt = 0;
  /** One (time, completed) sample per second at most: the sliding window the rate is taken over. */
  private readonly samples: Array<{ t: number; v: number }> = [];

  constructor(
    readonly label: string,
    readonly total: number,
    initial: number,
    private readonly owner: Progress,
  ) {
    this.initial = Math.min(Math.max(0, initial), total);
    this.completedBytes = this.initial;
    this.started = owner.now();
    if (this.completedBytes >= total) this.finish();
  }

  get completed(): number {
    return this.completedBytes;
  }

  get finished(): boolean {
    return this.ended;
  }

  set(completed: number): void {
    if (this.ended) return;
    const now = this.owner.now();
    this.completedBytes = Math.min(Math.max(completed, 0), this.total);
    const last = this.samples[this.samples.length - 1];
    if (!last || now - last.t >= RATE_SAMPLE_MS) {
      this.samples.push({ t: now, v: this.completedBytes });
      if (this.samples.length > RATE_WINDOW_SAMPLES) this.samples.shift();
    }
    if (this.completedBytes >= this.total) this.finish();
  }

  /** Marks the transfer complete. */
  done(): void {
    if (this.ended) return;
    this.completedBytes = this.total;
    this.finish();
  }

  /** Bytes per second over the sliding window (from the start while it holds one sample). */
  rate(): number {
    if (this.ended) return elapsedRate(this.completedBytes - this.initial, this.stoppedAt - this.started);
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last) return 0;
    if (first === last) return elapsedRate(last.v - this.initial, last.t - this.started);
    return elapsedRate(last.v - first.v, last.t - first.t);
  }

  line(width: number): string {
    return formatBarLine({ label: this.label, completed: this.completedBytes, total: this.total, rate: this.rate(), finished: this.ended }, width);
  }

  private finish(): void {
    this.ended = true;
    this.stoppedAt = this.owner.now();
    this.owner.changed(this);
  }
}

function elapsedRate(bytes: number, ms: number): number {
  return ms > 0 ? (bytes * 1000) / ms : 0;
}

export interface BarView {
  label: string;
  completed: number;
  total: number;
  /** Bytes per second; 0 hides rate and ETA. */
  rate: number;
  finished: boolean;
}

/**
 * One bar line, `width` columns minus one:
 * `<label> NN% ▕████    ▏ <done>/<total>  <rate>/s  <eta>` while running, and
 * `<label> 100% ▕████████▏ <total>` (padded to the same width) once finished.
 * The fixed-width columns keep the bar from jumping as the numbers change.
 */
export function formatBarLine(view: BarView, width: number): string {
  const percent = view.total > 0 ? (view.completed / view.total) * 100 : 0;
  let pre = view.label.trim() ? `${view.label.trim()} ` : "";
  pre += `${goFixed(percent, 0).padStart(3)}%`;

  let suf: string;
  const running = !view.finished;
  if (running) suf = `${humanBytes(view.completed).padStart(6)}/${humanBytes(view.total).padStart(6)}`;
  else suf = humanBytes(view.total).padStart(6) + " ".repeat(7);
  if (running && view.rate > 0) {
    suf += `  ${humanBytes(Math.trunc(view.rate)).padStart(6)}/s`;
    // Whole seconds left, as Ollama truncates them before formatting.
    const secondsLeft = Math.trunc(Math.max(0, view.total - view.completed) / view.rate);
    suf += `  ${humanDuration(secondsLeft * 1000).padStart(6)}`;
  } else {
    suf += " ".repeat(10 + 8);
  }

  // Two edge characters and a space either side of the bar.
  const room = width - pre.length - suf.length - 5;
  const filled = Math.max(0, Math.floor((room * percent) / 100));
  const empty = Math.max(0, room - filled);
  return `${pre} ▕${"█".repeat(filled)}${" ".repeat(empty)}▏ ${suf}`;
}

/** Ollama's label for a pull bar: `pulling <first 12 hex digits>:`. */
export function pullBarLabel(digest: string): string {
  const name = digest.startsWith("sha256:") ? digest.slice(7, 19) : digest.trim();
  return `pulling ${name}:`;
}

export class Progress {
  readonly now: () => number;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private states: State[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private log: ReturnType<typeof createLogUpdate> | undefined;
  private stopped = false;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? this.stream.isTTY === true;
    this.now = options.now ?? Date.now;
  }

  spinner(text: string): Spinner {
    const s = new Spinner(text, this);
    this.add(s);
    if (!this.tty) this.print(s.unprinted());
    return s;
  }

  /** A transfer bar of `total` bytes, starting at `completed` (a resumed download). */
  bar(label: string, total: number, completed = 0): Bar {
    const b = new Bar(label, total, completed, this);
    this.add(b);
    return b;
  }

  /** Stops every spinner, draws the final state and releases the terminal. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    for (const s of this.states) if (s instanceof Spinner) s.stop();
    if (this.tty) {
      this.render();
      this.log?.done();
    } else {
      // A bar that never completed (an error) still shows where it stopped.
      for (const s of this.states) if (s instanceof Bar && !s.finished) this.print(this.plainLine(s));
    }
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.states = [];
  }

  /** Called by a state that has finished. */
  changed(state: State): void {
    if (this.tty || this.stopped) return;
    if (state instanceof Spinner) this.print(state.unprinted());
    else if (state instanceof Bar) this.print(this.plainLine(state));
  }

  private add(state: State): void {
    if (this.stopped) return;
    this.states.push(state);
    if (this.tty && !this.timer) {
      this.log = createLogUpdate(this.stream as NodeJS.WritableStream);
      this.timer = setInterval(() => this.render(), SPINNER_FRAME_MS);
      // The display must never be what keeps the process alive.
      this.timer.unref();
    }
  }

  private render(): void {
    const log = this.log;
    if (!log) return;
    const width = this.stream.columns ?? DEFAULT_WIDTH;
    const now = this.now();
    let settled = 0;
    while (settled < this.states.length && this.states[settled]!.finished) settled++;
    if (settled > 0) {
      // Finished lines at the top scroll away for good; only the rest is redrawn.
      log(this.states.slice(0, settled).map((s) => s.line(width, now)).join("\n"));
      log.done();
      this.states = this.states.slice(settled);
    }
    if (this.states.length > 0) log(this.states.map((s) => s.line(width, now)).join("\n"));
  }

  private plainLine(bar: Bar): string {
    return bar.line(DEFAULT_WIDTH).trimEnd();
  }

  private print(line: string | undefined): void {
    if (line) this.stream.write(line + "\n");
  }
}

/** One line of an Ollama-style progress stream (/api/pull, /api/push, /api/create). */
export interface ProgressUpdate {
  status?: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface NDJSONProgressOptions {
  /** The label of a new bar; default the status text (push and create). */
  barLabel?: (update: ProgressUpdate & { digest: string }) => string;
  /** Ignore bar updates with nothing completed yet, so no 0% bar shows (pull). */
  skipUnstarted?: boolean;
}

/** What `pull` uses: bars labelled `pulling <12 hex>:`, none drawn at 0%. */
export const PULL_PROGRESS: NDJSONProgressOptions = {
  barLabel: (u) => pullBarLabel(u.digest),
  skipUnstarted: true,
};

/**
 * Draws a progress stream the way Ollama's CLI does: a line with a digest and a total drives the bar
 * of that digest; any other line with a new status stops the current spinner and starts another.
 * Returns the last update seen.
 */
export async function renderNDJSONProgress(
  stream: AsyncIterable<ProgressUpdate>,
  progress: Progress,
  options: NDJSONProgressOptions = {},
): Promise<ProgressUpdate | undefined> {
  const bars = new Map<string, Bar>();
  let spinner: Spinner | undefined;
  let status: string | undefined;
  let last: ProgressUpdate | undefined;
  try {
    for await (const update of stream) {
      last = update;
      const { digest, total } = update;
      if (digest && total !== undefined && total > 0) {
        const completed = update.completed ?? 0;
        if (options.skipUnstarted && completed === 0) continue;
        spinner?.stop();
        let bar = bars.get(digest);
        if (!bar) {
          const label = options.barLabel ? options.barLabel({ ...update, digest }) : (update.status ?? "");
          bar = progress.bar(label, total, completed);
          bars.set(digest, bar);
        }
        bar.set(completed);
      } else if (update.status !== undefined && update.status !== status) {
        spinner?.stop();
        status = update.status;
        spinner = progress.spinner(status);
      }
    }
  } finally {
    spinner?.stop();
  }
  return last;
}
