// Ranged downloads run on one worker thread shared by every pull in the daemon (range-worker.mjs
// says why). This side hands out jobs, relays progress, and hands back either the end of a range
// or what a response without its bytes said (a redirect, a challenge, an error), which the
// registry session on this thread judges. Failures to get any answer become the transfer errors
// the retry policy knows.

import { Worker } from "node:worker_threads";
import { RegistryError, TransportError } from "./registry-errors.ts";

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
  /** The blob's size from the manifest: an answer declaring another is refused. */
  total: number;
  /** Where the pages written also go for the download's sha256 (hash-window.mjs). */
  window?: SharedArrayBuffer;
}

/** A response that carried none of the range: its status and what the session needs of it. */
export interface RangeAnswer {
  status: number;
  location: string | null;
  challenge: string | null;
  /** The beginning of an error body. */
  text: string;
}

export interface RangeListener {
  /** Bytes of the range reached the file. */
  onWritten: (n: number) => void;
  /** Bytes are arriving (at most every quarter second): the stall watchdog's food. */
  onAlive: () => void;
  /** The response is the range's bytes: its URL is where the blob is. */
  onStarted: () => void;
}

interface Job extends RangeListener {
  resolve: (answer: RangeAnswer | undefined) => void;
  reject: (e: Error) => void;
}

type Message = { id: number; wrote?: number; alive?: true; started?: true; done?: true; answer?: RangeAnswer; error?: string; status?: number; code?: string; name?: string };

class RangeFetcher {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;

  /**
   * Starts the thread ahead of the first range, so that its start-up (tens of milliseconds: a
   * JavaScript environment of its own) overlaps the manifest's fetch rather than delaying the
   * first byte.
   */
  warm(): void {
    this.start();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER);
    // Idle, the thread must not keep the process alive.
    w.unref();
    w.on("message", (m: Message) => this.message(m));
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

  private message(m: Message): void {
    const job = this.jobs.get(m.id);
    if (!job) return;
    if (m.wrote !== undefined) return job.onWritten(m.wrote);
    if (m.alive) return job.onAlive();
    if (m.started) return job.onStarted();
    this.jobs.delete(m.id);
    if (m.done) return job.resolve(undefined);
    if (m.answer) return job.resolve(m.answer);
    if (m.name === "AbortError") {
      const e = new Error("the download was cancelled");
      e.name = "AbortError";
      return job.reject(e);
    }
    // Status 0: no complete answer (refused, reset, cut short), which the next attempt may get.
    const message = m.error ?? "download failed";
    const e: Error & { code?: string } = m.status ? new RegistryError(m.status, message) : new TransportError(message);
    if (m.code) e.code = m.code;
    job.reject(e);
  }

  /**
   * Downloads one range into its file. Resolves undefined when the range is written, or with the
   * answer of a response that carried none of it.
   */
  fetch(job: RangeJob, listener: RangeListener, signal?: AbortSignal): Promise<RangeAnswer | undefined> {
    const id = this.nextId++;
    const worker = this.start();
    return new Promise((resolve, reject) => {
      const cancel = (): void => worker.postMessage({ cancel: id });
      signal?.addEventListener("abort", cancel, { once: true });
      const done = (): void => signal?.removeEventListener("abort", cancel);
      this.jobs.set(id, {
        ...listener,
        resolve: (a) => (done(), resolve(a)),
        reject: (e) => (done(), reject(e)),
      });
      worker.postMessage({ id, ...job });
      if (signal?.aborted) cancel();
    });
  }
}

export const rangeFetcher = new RangeFetcher();
