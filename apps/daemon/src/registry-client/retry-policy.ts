// The one retry policy of uploads and downloads (docs/protocol.md, "Retries"): which failures are
// worth another attempt, how many attempts a part gets, and how long to wait between them. Ollama
// gives a part six attempts with a doubling pause; so does Corral, and both directions agree on
// what is retried: no answer at all (refused, reset, cut short, stalled), the server's trouble
// (5xx) and its requests to come back later (408, 429). A full registry (507), a refusal (4xx) and
// another host's demand for credentials are answered the same way every time.

import { pause } from "../abortable-wait.ts";
import { ForeignCredentialsError, RegistryError, TransportError } from "./registry-errors.ts";

/** Attempts one part gets, the first included. */
export const ATTEMPTS = 6;

/** The pause before attempt `attempt + 1`: 1 s, doubling, at most 32 s. */
export function backoffMs(attempt: number): number {
  return Math.min(1000 * 2 ** attempt, 32_000);
}

/** Whether another attempt may meet something else than `e` did. */
export function retryable(e: unknown): boolean {
  if (e instanceof ForeignCredentialsError) return false;
  if (e instanceof TransportError || !(e instanceof RegistryError)) {
    // A local file error (the disk full, the file gone) would only happen again.
    const code = (e as NodeJS.ErrnoException).code;
    return !(code === "ENOSPC" || code === "ENOENT" || code === "EACCES" || code === "EROFS" || code === "EDQUOT");
  }
  return (e.status >= 500 && e.status !== 507 && e.status !== 501) || e.status === 408 || e.status === 429;
}

export interface RetryOptions {
  signal?: AbortSignal;
  /** Heard before each pause (a part reports the bytes it lost). */
  onRetry?: (e: unknown, attempt: number) => void;
}

/** Runs `attempt` until it succeeds, fails in a way not worth retrying, or runs out of attempts. */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (o.signal?.aborted || attempt + 1 >= ATTEMPTS || !retryable(e)) throw e;
      o.onRetry?.(e, attempt);
      await pause(backoffMs(attempt), o.signal);
      if (o.signal?.aborted) throw e;
    }
  }
}
