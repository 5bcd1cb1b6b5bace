/**
 * Bounds on rendering a model TEMPLATE, shared by both engines (Go text/template here, Hugging Face
 * Jinja in runner/jinja-render.ts). A TEMPLATE comes from whoever created the model and runs on the
 * daemon's main thread, so a render must end, and end small, whatever the template says: it may
 * take so many steps, write so much text, build strings and lists so large, repeat so much work on
 * large values, and nest calls so deep. A wall clock, looked at every so many steps, backs the step
 * budget up for steps that are slow. Every bound throws TemplateLimitError.
 */
import { TemplateError } from "./errors.ts";

export interface RenderLimits {
  /** Executed template nodes (Go: nodes walked and functions called; Jinja: nodes evaluated, blocks run). */
  maxSteps: number;
  /** Characters of output, and of any one string the template builds. */
  maxOutput: number;
  /** Items of any one list the template builds (Jinja's range(), list concatenation). */
  maxItems: number;
  /** Characters that built-in functions and operators produce or scan, over the whole render. */
  maxWork: number;
  /** Nested {{template}} calls (Go) or calls (Jinja macros). */
  maxDepth: number;
  /** Wall-clock backstop, in milliseconds. */
  maxMillis: number;
}

/**
 * What a render of a small conversation may use. The real templates in create/templates take
 * at most about 70 steps per message (13,400 for 200 messages with tools; see
 * template-real-budget.test.ts), so a million steps leaves a wide margin; limitsFor() adds to
 * these for a long conversation.
 */
export const DEFAULT_LIMITS: Readonly<RenderLimits> = Object.freeze({
  maxSteps: 1_000_000,
  maxOutput: 4 * 1024 * 1024,
  maxItems: 100_000,
  maxWork: 64 * 1024 * 1024,
  maxDepth: 100,
  maxMillis: 5_000,
});

/** How much a render's input holds: characters of text, and messages plus tools. */
export interface InputSize {
  chars: number;
  items: number;
}

/**
 * The limits for a render of `size`: a legitimate render grows with its conversation (a template
 * may write a message more than once, or list the messages in reverse), so each bound but depth
 * and time gets a share per message and per character on top of the base.
 */
export function limitsFor(size: InputSize, base: Readonly<RenderLimits> = DEFAULT_LIMITS): RenderLimits {
  return {
    maxSteps: base.maxSteps + 1_000 * size.items,
    maxOutput: base.maxOutput + 4 * size.chars,
    maxItems: base.maxItems + 2 * size.items,
    maxWork: base.maxWork + 64 * size.chars,
    maxDepth: base.maxDepth,
    maxMillis: base.maxMillis,
  };
}

/** A render ran into one of its limits. Callers show it like any template error. */
export class TemplateLimitError extends TemplateError {}

/** Steps between looks at the clock. */
const CLOCK_EVERY = 1024;

export interface BudgetOptions {
  /** When the render began (the deadline is maxMillis later); several renders of one request can share it. Default: now. */
  started?: number;
  /** The clock, in milliseconds; tests replace it. Default: performance.now. */
  now?: () => number;
}

/** What one render has used so far; each engine reports its steps, output and work here. */
export class RenderBudget {
  readonly limits: Readonly<RenderLimits>;
  private steps = 0;
  private output = 0;
  private work = 0;
  private untilClock = CLOCK_EVERY;
  private readonly now: () => number;
  private readonly deadline: number;

  constructor(limits: Readonly<RenderLimits> = DEFAULT_LIMITS, opts: BudgetOptions = {}) {
    this.limits = limits;
    this.now = opts.now ?? (() => performance.now());
    this.deadline = (opts.started ?? this.now()) + limits.maxMillis;
  }

  /** Steps taken so far (for measuring real templates). */
  get stepsTaken(): number {
    return this.steps;
  }

  /** Characters of work so far (for measuring real templates). */
  get workDone(): number {
    return this.work;
  }

  /** Counts `n` executed nodes. */
  step(n = 1): void {
    this.steps += n;
    if (this.steps > this.limits.maxSteps) throw new TemplateLimitError(`rendering stopped after ${this.limits.maxSteps} steps (the template loops too much)`);
    this.tick(n);
  }

  /** Counts `n` characters written to the output. */
  write(n: number): void {
    this.output += n;
    this.checkOutput(this.output);
  }

  /** Checks that text accumulated so far (`length` characters) still fits the output bound. */
  checkOutput(length: number): void {
    if (length > this.limits.maxOutput) throw new TemplateLimitError(`rendering stopped: output exceeds ${this.limits.maxOutput} characters (the template writes too much text)`);
  }

  /** Checks a string of `length` characters that the template is about to build. */
  checkValue(length: number): void {
    if (length <= this.limits.maxOutput) return;
    const size = Number.isFinite(length) ? `${length} characters` : "unbounded length";
    throw new TemplateLimitError(`rendering stopped: a value of ${size} exceeds the limit of ${this.limits.maxOutput}`);
  }

  /** Checks a list of `count` items that the template is about to build. */
  checkItems(count: number): void {
    if (!(count <= this.limits.maxItems)) throw new TemplateLimitError(`rendering stopped: a list of ${count} items exceeds the limit of ${this.limits.maxItems}`);
  }

  /** Counts `n` characters that a built-in produced or scanned (a list item counts as several). */
  charge(n: number): void {
    this.work += n;
    if (!(this.work <= this.limits.maxWork)) {
      throw new TemplateLimitError(`rendering stopped: the template processed more than ${this.limits.maxWork} characters (it repeats too much work on large values)`);
    }
    // Large work is slow work: bring the next look at the clock closer.
    this.tick(Math.floor(n / 65536));
  }

  /** Enters a nested call at `depth` (1 for the first). */
  checkDepth(depth: number): void {
    if (depth > this.limits.maxDepth) throw new TemplateLimitError(`rendering stopped: exceeded maximum template depth (${this.limits.maxDepth})`);
  }

  private tick(n: number): void {
    this.untilClock -= n;
    if (this.untilClock > 0) return;
    this.untilClock = CLOCK_EVERY;
    if (this.now() > this.deadline) {
      const seconds = this.limits.maxMillis / 1000;
      throw new TemplateLimitError(`rendering stopped after ${seconds} second${seconds === 1 ? "" : "s"} (the template takes too long)`);
    }
  }
}
