// Ranged downloads run on one worker thread shared by every pull in the daemon (range-worker.mjs
// says why). This side hands out jobs, relays progress and turns the worker's answers back into
// the errors the pull understands.

import { Worker } from "node:worker_threads";
import { NotFoundError, RegistryError, TransportError } from "./registry-errors.ts";

const WORKER = new URL("./range-worker.mjs", import.meta.url);

export interface RangeJob {
  url: string;
  headers: Record<string, string>;
  /** The partial file the bytes go into, at their own offsets. */
  path: string;
  start: number;
  /** Inclusive. */
  end: number;
  /** A 200 with the whole body is as good as a 206 (the range is the whole blob). */
  wholeOK: boolean;
}

interface Job {
  onWritten: (n: number) => void;
  resolve: () => void;
  reject: (e: Error) => void;
}

type Answer = { id: number; wrote?: number; done?: true; error?: string; status?: number; code?: string; name?: string };

class RangeFetcher {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER);
    // Idle, the thread must not keep the process alive.
    w.unref();
    w.on("message", (m: Answer) => this.answer(m));
    const fail = (e: Error): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      for (const job of this.jobs.values()) job.reject(e);
      this.jobs.clear();
    };
    w.on("error", fail);
    w.on("exit", (code) => fail(new Error(`the download thread exited with code ${code}`)));
    this.worker = w;
    return w;
  }

  private answer(m: Answer): void {
    const job = this.jobs.get(m.id);
    if (!job) return;
    if (m.wrote !== undefined) return job.onWritten(m.wrote);
    this.jobs.delete(m.id);
    if (m.done) return job.resolve();
    if (m.name === "AbortError") {
      const e = new Error("the download was cancelled");
      e.name = "AbortError";
      return job.reject(e);
    }
    if (m.status === 404) return job.reject(new NotFoundError());
    // Status 0: no complete answer (refused, reset, cut short), which the next attempt may get.
    const message = m.error ?? "download failed";
    const e: Error & { code?: string } = m.status ? new RegistryError(m.status, message) : new TransportError(message);
    if (m.code) e.code = m.code;
    job.reject(e);
  }

  /** Downloads one range into its file; `onWritten` hears of every write that completed. */
  fetch(job: RangeJob, onWritten: (n: number) => void, signal?: AbortSignal): Promise<void> {
    const id = this.nextId++;
    const worker = this.start();
    return new Promise<void>((resolve, reject) => {
      const cancel = (): void => worker.postMessage({ cancel: id });
      signal?.addEventListener("abort", cancel, { once: true });
      const done = (): void => signal?.removeEventListener("abort", cancel);
      this.jobs.set(id, {
        onWritten,
        resolve: () => (done(), resolve()),
        reject: (e) => (done(), reject(e)),
      });
      worker.postMessage({ id, ...job });
      if (signal?.aborted) cancel();
    });
  }
}

export const rangeFetcher = new RangeFetcher();
