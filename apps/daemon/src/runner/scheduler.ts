// Which models are loaded, for how long, and who may use them (docs/daemon.md, "Keep-alive"). A
// loaded model (a "runner") has one llama.cpp context with CORRAL_NUM_PARALLEL sequences, whose
// tokens are decoded together in shared batches (decode-steps.ts; docs/daemon.md, "Parallel
// requests"); requests beyond that wait for a free sequence. A model stays loaded for its keep-alive
// after its last request; when too many models are loaded, or memory is short, idle ones are
// unloaded first (least recently used), and a request for a new model waits until one can go. On a
// GPU backend a model's layers are offloaded as `num_gpu` says, and GPU memory counts as system
// memory does (docs/daemon.md, "GPUs"; the rules themselves are in gpu-placement.ts).

import { freemem } from "node:os";
import type { LlamaContext, LlamaContextSequence, LlamaEmbeddingContext, LlamaModel } from "node-llama-cpp";
import { llamaEngine, threadsFor } from "./llama.ts";
import { ensureLoadable } from "./guard.ts";
import { explicitPartialOffload, gpuLayersFor, offloadableLayers, RAM_HEADROOM, roomFor, sameGpuRequest } from "./gpu-placement.ts";
import { readGGUFHeader } from "@corral/shared/gguf/index";
import { debugLog } from "../log.ts";
import type { DaemonConfig } from "../config.ts";
import { waitInQueue } from "../abortable-wait.ts";
import { DecodeSteps } from "./decode-steps.ts";
import { VisionUnavailableError, VisionWorker } from "./vision/vision-worker.ts";
import { StatusError } from "../errors.ts";

/** The longest delay Node's timers take (2^31-1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How far ahead /api/ps puts a model kept forever. */
const FOREVER_MS = 1e12;

export interface LoadSpec {
  /** Manifest digest: what identifies the model being run. */
  digest: string;
  /** Shortest name, as /api/ps shows it. */
  name: string;
  modelPath: string;
  adapters: string[];
  /** The vision projector, when the model has one (docs/vision.md). */
  projectorPath?: string;
  numCtx: number;
  numThreads?: number;
  numBatch?: number;
  /** `num_gpu`: layers to offload; negative for as many as fit, 0 for the CPU only. */
  numGpu: number;
  /** Bytes of the model and adapter files. */
  sizeBytes: number;
  details: Record<string, unknown>;
}

export interface SchedulerOptions {
  numParallel: number;
  maxLoaded: number;
  defaultKeepAliveMs: number;
}

export function schedulerOptions(config: DaemonConfig): SchedulerOptions {
  return { numParallel: config.numParallel, maxLoaded: config.maxLoadedModels, defaultKeepAliveMs: config.keepAliveMs };
}

export class Runner {
  active = 0;
  lastUsed = Date.now();
  expiresAt: Date;
  private timer: NodeJS.Timeout | undefined;
  private readonly free: LlamaContextSequence[] = [];
  private readonly waiting: Array<(s: LlamaContextSequence) => void> = [];
  private embedding: Promise<LlamaEmbeddingContext> | undefined;
  private embedQueue: Promise<unknown> = Promise.resolve();
  private vision: Promise<VisionWorker> | undefined;
  private visionQueue: Promise<unknown> = Promise.resolve();

  readonly model: LlamaModel;
  readonly context: LlamaContext;
  /** Plans and counts the shared batches; steps the log-probability loop (runner/decode-steps.ts). */
  readonly steps: DecodeSteps;
  keepAliveMs: number;
  private readonly onExpire: (r: Runner) => void;

  constructor(
    readonly spec: LoadSpec,
    loaded: { model: LlamaModel; context: LlamaContext; steps: DecodeSteps; keepAliveMs: number; onExpire: (r: Runner) => void },
  ) {
    this.model = loaded.model;
    this.context = loaded.context;
    this.keepAliveMs = loaded.keepAliveMs;
    this.onExpire = loaded.onExpire;
    this.steps = loaded.steps;
    this.expiresAt = new Date(Date.now() + (this.keepAliveMs < 0 ? FOREVER_MS : Math.min(this.keepAliveMs, FOREVER_MS)));
  }

  /** Sequences handed out and not yet given back: the requests generating on this model now. */
  sequencesInUse = 0;

  /** A context sequence for one request; waits while every sequence is in use. */
  async acquireSequence(signal?: AbortSignal): Promise<LlamaContextSequence> {
    const seq = this.free.pop() ?? (this.context.sequencesLeft > 0 ? this.context.getSequence() : await waitInQueue(this.waiting, signal));
    this.sequencesInUse++;
    return seq;
  }

  async releaseSequence(seq: LlamaContextSequence): Promise<void> {
    this.sequencesInUse--;
    // A sequence goes back empty, so the next request cannot see this one's tokens.
    await seq.clearHistory().catch(() => undefined);
    const next = this.waiting.shift();
    if (next) next(seq);
    else this.free.push(seq);
  }

  /** Embeddings run one at a time on their own context, created on first use. */
  embed<T>(fn: (ctx: LlamaEmbeddingContext) => Promise<T>): Promise<T> {
    this.embedding ??= this.model.createEmbeddingContext({
      contextSize: this.spec.numCtx,
      threads: threadsFor(this.spec.sizeBytes, this.spec.numThreads),
    });
    const run = this.embedQueue.then(async () => fn(await this.embedding!));
    this.embedQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs `fn` with this model's vision worker (docs/vision.md, "The worker"), one request at a time:
   * the worker starts on first use and ends with the runner. One that was killed (it failed, or
   * did not answer a stop) is replaced for the next request; a request that ends because its
   * client left has stopped the worker's answer and keeps it. A machine without the library is
   * a 400 that says why; it is asked again each time, so building the library needs no restart.
   */
  withVision<T>(fn: (w: VisionWorker) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const projector = this.spec.projectorPath;
    if (!projector) return Promise.reject(new StatusError(400, `${this.spec.name} does not support vision`));
    const run = this.visionQueue.then(async () => {
      signal?.throwIfAborted();
      this.vision ??= this.startVision(projector);
      const pending = this.vision;
      let w: VisionWorker;
      try {
        w = await pending;
      } catch (e) {
        if (this.vision === pending) this.vision = undefined;
        throw e;
      }
      try {
        return await fn(w);
      } catch (e) {
        const clientLeft = signal?.aborted === true && e === signal.reason;
        if (!(e instanceof StatusError && e.status === 400) && !clientLeft) w.kill();
        throw e;
      } finally {
        if (w.killed && this.vision === pending) this.vision = undefined;
      }
    });
    this.visionQueue = run.catch(() => undefined);
    return run;
  }

  private async startVision(projector: string): Promise<VisionWorker> {
    let w: VisionWorker;
    try {
      w = await VisionWorker.start();
    } catch (e) {
      if (e instanceof VisionUnavailableError) throw new StatusError(400, `images are off on this machine: ${e.message}`);
      throw e;
    }
    try {
      await w.open({
        model: this.spec.modelPath,
        projector,
        ctx: this.spec.numCtx,
        threads: threadsFor(this.spec.sizeBytes, this.spec.numThreads),
        gpuLayers: this.model.gpuLayers,
        ...(this.spec.numBatch ? { batch: this.spec.numBatch } : {}),
      });
    } catch (e) {
      w.kill();
      throw e;
    }
    debugLog("vision worker started", { model: this.spec.name, llama: w.llamaVersion, pid: w.pid });
    return w;
  }

  begin(): void {
    this.active++;
    this.lastUsed = Date.now();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  end(): void {
    this.active--;
    this.lastUsed = Date.now();
    if (this.active === 0) this.arm();
  }

  /** Starts the keep-alive countdown (it starts when the last request finishes; docs/daemon.md, "Keep-alive"). */
  arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.keepAliveMs < 0) {
      this.expiresAt = new Date(Date.now() + FOREVER_MS);
      return;
    }
    const deadline = Date.now() + this.keepAliveMs;
    // A Date past its range (Go's largest duration is 292 years) is shown as forever is.
    this.expiresAt = new Date(Math.min(deadline, Date.now() + FOREVER_MS));
    // Node fires a timer longer than 2^31-1 ms (24.8 days; "720h" is 30 days) at once, so a long
    // keep-alive waits in steps of at most that.
    const wait = (): void => {
      const left = Math.max(0, deadline - Date.now());
      this.timer = setTimeout(left > MAX_TIMER_MS ? wait : () => this.onExpire(this), Math.min(left, MAX_TIMER_MS));
      this.timer.unref();
    };
    wait();
  }

  async dispose(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.embedding) await (await this.embedding.catch(() => undefined))?.dispose();
    if (this.vision) (await this.vision.catch(() => undefined))?.close();
    await this.context.dispose();
    await this.model.dispose();
  }
}

export interface Lease {
  runner: Runner;
  /** Nanoseconds spent loading for this request (0 when it was already loaded). */
  loadDurationNs: number;
  release(): void;
}

export class Scheduler {
  private readonly runners = new Map<string, Runner>();
  private readonly loading = new Map<string, Promise<Runner>>();
  private idleWaiters: Array<() => void> = [];

  constructor(readonly options: SchedulerOptions) {}

  /**
   * Gets the model loaded (loading or reloading it as needed) and marks it busy until the
   * lease is released. `keepAliveMs` replaces the runner's duration when given.
   */
  async acquire(spec: LoadSpec, keepAliveMs: number | undefined, signal?: AbortSignal): Promise<Lease> {
    const started = process.hrtime.bigint();
    let loaded = false;
    for (;;) {
      signal?.throwIfAborted();
      const existing = this.runners.get(spec.digest);
      if (existing && existing.spec.numCtx === spec.numCtx && sameGpuRequest(existing.spec.numGpu, spec.numGpu)) {
        existing.begin();
        if (keepAliveMs !== undefined) existing.keepAliveMs = keepAliveMs;
        return this.lease(existing, loaded ? Number(process.hrtime.bigint() - started) : 0);
      }
      if (existing) {
        // Another context size or GPU split was asked for: reload once the current users are done.
        if (existing.active > 0) {
          await this.waitForIdle(signal);
          continue;
        }
        await this.unloadRunner(existing);
      }
      const pending = this.loading.get(spec.digest);
      if (pending) {
        await pending.catch(() => undefined);
        continue;
      }
      await this.makeRoom(spec, signal);
      const load = this.load(spec, keepAliveMs ?? this.options.defaultKeepAliveMs);
      this.loading.set(spec.digest, load);
      try {
        this.runners.set(spec.digest, await load);
        loaded = true;
      } finally {
        this.loading.delete(spec.digest);
      }
    }
  }

  private lease(runner: Runner, loadDurationNs: number): Lease {
    let released = false;
    return {
      runner,
      loadDurationNs,
      release: () => {
        if (released) return;
        released = true;
        runner.end();
        if (runner.active === 0) this.notifyIdle();
      },
    };
  }

  private async load(spec: LoadSpec, keepAliveMs: number): Promise<Runner> {
    const header = await ensureLoadable(spec.modelPath);
    const llama = await llamaEngine();
    const gpuLayers = gpuLayersFor({
      numGpu: spec.numGpu,
      totalLayers: offloadableLayers(header),
      // Room is left for the context of every sequence.
      contextSize: spec.numCtx * this.options.numParallel,
      gpu: llama.gpu !== false,
    });
    const model = await llama.loadModel({ modelPath: spec.modelPath, gpuLayers });
    debugLog("model loaded", { model: spec.name, backend: llama.gpu || "cpu", num_gpu: spec.numGpu, gpu_layers: model.gpuLayers, layers: model.fileInsights.totalLayers });
    try {
      const steps = new DecodeSteps();
      // Each sequence has a window of num_ctx tokens of its own (the context holds N × num_ctx).
      const context = await model.createContext({
        contextSize: spec.numCtx,
        sequences: this.options.numParallel,
        batching: { itemPrioritizationStrategy: steps.planBatch },
        threads: threadsFor(spec.sizeBytes, spec.numThreads),
        ...(spec.numBatch ? { batchSize: spec.numBatch } : {}),
        ...(spec.adapters.length ? { lora: { adapters: spec.adapters.map((filePath) => ({ filePath, scale: 1 })) } } : {}),
      });
      return new Runner(spec, { model, context, steps, keepAliveMs, onExpire: (r) => void this.expire(r) });
    } catch (e) {
      await model.dispose();
      throw e;
    }
  }

  /** Unloads idle models until the new one fits the model limit, free memory and free GPU memory. */
  private async makeRoom(spec: LoadSpec, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const decision = roomFor({
        loaded: [...this.runners.values()].map((r) => ({ key: r.spec.digest, active: r.active, lastUsed: r.lastUsed })),
        loading: this.loading.size,
        maxLoaded: this.options.maxLoaded,
        ram: { need: spec.sizeBytes, free: freemem() },
        ...(this.runners.size > 0 ? await this.vramQuery(spec) : {}),
      });
      if (decision.action === "load") return;
      const victim = decision.action === "unload" ? this.runners.get(decision.key) : undefined;
      if (victim) {
        debugLog("unloading to make room", { model: victim.spec.name, for: spec.name, reason: decision.reason });
        await this.unloadRunner(victim);
        continue;
      }
      await this.waitForIdle(signal);
    }
  }

  /**
   * The GPU side of makeRoom: asked only while other models are loaded (so the engine is too).
   * A model to be fully offloaded is predicted to take its file size and a fifth more for its
   * context; the CPU only (num_gpu 0) or fewer layers than the model has ask for no GPU room.
   */
  private async vramQuery(spec: LoadSpec): Promise<{ vram?: { need: number; free: number } }> {
    if (spec.numGpu === 0) return {};
    const llama = await llamaEngine();
    if (llama.gpu === false) return {};
    if (spec.numGpu > 0 && explicitPartialOffload(spec.numGpu, offloadableLayers(await readGGUFHeader(spec.modelPath)))) return {};
    const { free } = await llama.getVramState();
    return { vram: { need: spec.sizeBytes * RAM_HEADROOM, free } };
  }

  private waitForIdle(signal?: AbortSignal): Promise<void> {
    return waitInQueue<void>(this.idleWaiters, signal);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async expire(r: Runner): Promise<void> {
    if (r.active === 0 && this.runners.get(r.spec.digest) === r) await this.unloadRunner(r);
  }

  private async unloadRunner(r: Runner): Promise<void> {
    if (this.runners.get(r.spec.digest) === r) this.runners.delete(r.spec.digest);
    await r.dispose().catch((e: unknown) => process.stderr.write(`unloading ${r.spec.name}: ${(e as Error).message}\n`));
    this.notifyIdle();
  }

  /** Unloads a model now if idle, or as soon as its current requests finish (keep_alive 0). */
  unload(digest: string): void {
    const r = this.runners.get(digest);
    if (!r) return;
    r.keepAliveMs = 0;
    if (r.active === 0) void this.unloadRunner(r);
  }

  isLoaded(digest: string): boolean {
    return this.runners.has(digest);
  }

  list(): Runner[] {
    return [...this.runners.values()];
  }

  async close(): Promise<void> {
    for (const r of [...this.runners.values()]) await this.unloadRunner(r);
  }
}
