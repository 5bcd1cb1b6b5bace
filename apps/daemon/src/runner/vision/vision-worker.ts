// The daemon's side of the vision worker (vision-child.mjs, docs/vision.md): starts the child, opens a
// model with its projector, and runs one generation at a time, turning the worker's JSON lines
// into results and errors. The caller's bad input (an image that is not one, too large, a prompt
// whose image markers do not match) becomes a 400; anything else a 500; a worker that cannot run
// on this machine rejects with VisionUnavailableError, whose message says why. stop() ends the
// answer under way between two tokens and keeps the worker; one that does not answer a stop
// within STOP_GRACE_MS is killed.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface, type Interface } from "node:readline";
import { StatusError } from "../../errors.ts";

const WORKER = fileURLToPath(new URL("./vision-child.mjs", import.meta.url));

/**
 * How long a worker may take to answer a stop before it is killed. The child reads the stop
 * between two tokens; one asked while it evaluates a prompt (images included) answers after that,
 * so this is long enough for a large prompt on a CPU, and is only reached by a child that hangs.
 */
const STOP_GRACE_MS = 60_000;

export class VisionUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VisionUnavailableError";
  }
}

export interface VisionOpenOptions {
  model: string;
  projector: string;
  ctx?: number;
  batch?: number;
  threads?: number;
  gpuLayers?: number;
}

export interface VisionGenerateRequest {
  /** The prompt's text, with `marker` where each image goes, in order. */
  prompt: string;
  /** Encoded pictures (PNG, JPEG, GIF, BMP). */
  images: Uint8Array[];
  /** Largest width × height accepted per image. */
  maxPixels: number;
  maxTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
}

export interface VisionGenerateResult {
  promptTokens: number;
  evalCount: number;
  /** "stopped": ended by stop() before the model's end or the token bound. */
  reason: "stop" | "length" | "stopped";
}

type Message = Record<string, unknown>;

const CLIENT_ERRORS = new Set(["image", "markers", "context"]);

export class VisionWorker {
  private readonly queue: Message[] = [];
  private waiter: ((m: Message | undefined) => void) | undefined;
  private exited = false;
  private stderr = "";
  /** Ids of generations, sent with each so that a late stop cannot end the next one. */
  private lastId = 0;
  /** The generation under way, and whether a stop was sent for it. */
  private running: { id: number; stopping: boolean; timer?: NodeJS.Timeout } | undefined;

  private constructor(
    private readonly child: ChildProcess,
    lines: Interface,
    /** The text that stands for one image in a prompt. */
    public marker = "",
    public llamaVersion = "",
  ) {
    lines.on("line", (line) => {
      let m: Message;
      try {
        m = JSON.parse(line) as Message;
      } catch {
        return;
      }
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(m);
      } else this.queue.push(m);
    });
    child.stderr!.on("data", (d: Buffer) => {
      if (this.stderr.length < 8192) this.stderr += d.toString();
    });
    lines.on("close", () => {
      this.exited = true;
      this.waiter?.(undefined);
      this.waiter = undefined;
    });
  }

  /** Starts a worker and waits until it has loaded and checked the library. */
  static async start(): Promise<VisionWorker> {
    const child = spawn(process.execPath, [WORKER], { stdio: ["pipe", "pipe", "pipe"] });
    const w = new VisionWorker(child, createInterface({ input: child.stdout! }));
    child.on("error", () => undefined);
    // A write to a child that has just died is reported here; its exit is what the requests see.
    child.stdin!.on("error", () => undefined);
    const first = await w.next();
    if (!first || first["ready"] !== true) {
      w.kill();
      const why = typeof first?.["error"] === "string" ? first["error"] : w.stopped();
      throw new VisionUnavailableError(why);
    }
    w.marker = String(first["marker"]);
    w.llamaVersion = String(first["llamaVersion"]);
    return w;
  }

  private next(): Promise<Message | undefined> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.exited) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  private stopped(): string {
    const tail = this.stderr.trim().split("\n").filter(Boolean).slice(-2).join("; ");
    return `the vision runner stopped${tail ? `: ${tail}` : ""}`;
  }

  private send(m: Message): void {
    if (!this.exited) this.child.stdin!.write(JSON.stringify(m) + "\n");
  }

  /** The child's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  private fail(m: Message | undefined): StatusError {
    if (!m) return new StatusError(500, this.stopped());
    const message = String(m["error"]);
    return new StatusError(CLIENT_ERRORS.has(String(m["kind"])) ? 400 : 500, message);
  }

  async open(o: VisionOpenOptions): Promise<void> {
    this.send({ op: "open", ...o });
    const m = await this.next();
    if (m?.["opened"] !== true) throw this.fail(m);
  }

  /** Runs one generation; `onText` receives the answer as it is made. */
  async generate(req: VisionGenerateRequest, onText: (text: string) => void): Promise<VisionGenerateResult> {
    const { images, ...rest } = req;
    const run: NonNullable<typeof this.running> = { id: ++this.lastId, stopping: false };
    this.running = run;
    try {
      this.send({ op: "generate", id: run.id, ...rest, images: images.map((b) => Buffer.from(b).toString("base64")) });
      const head = await this.next();
      if (typeof head?.["promptTokens"] !== "number") throw this.fail(head);
      for (;;) {
        const m = await this.next();
        if (!m || typeof m["error"] === "string") throw this.fail(m);
        if (typeof m["text"] === "string") onText(m["text"]);
        if (m["done"] === true) {
          const reason = m["reason"] === "stop" || m["reason"] === "stopped" ? m["reason"] : "length";
          return { promptTokens: head["promptTokens"], evalCount: Number(m["evalCount"]), reason };
        }
      }
    } finally {
      this.running = undefined;
      clearTimeout(run.timer);
    }
  }

  /**
   * Ends the generation under way before its next token; it then resolves with reason "stopped"
   * (or as it would have, when it ended first). The worker stays for the next request, unless it
   * does not answer within STOP_GRACE_MS: then it is killed and the generation rejects.
   */
  stop(): void {
    const run = this.running;
    if (!run || run.stopping || this.exited) return;
    run.stopping = true;
    this.send({ op: "stop", id: run.id });
    run.timer = setTimeout(() => {
      if (this.running === run) this.kill();
    }, STOP_GRACE_MS);
    run.timer.unref();
  }

  /** Whether kill() was called: the worker cannot take another request. */
  killed = false;

  /** Ends the worker at once (also what cancelling a generation does). */
  kill(): void {
    this.killed = true;
    this.child.kill("SIGKILL");
  }

  /** Ends the worker after its current request. */
  close(): void {
    this.child.stdin!.end();
  }
}
