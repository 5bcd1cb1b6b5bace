// Waiting that a request's AbortSignal can end: a place in a queue (a free sequence, an idle
// model), a pause between retries, and work shared with other requests (a download two pulls wait
// for). A request that goes away must not hold a place it will never use, nor keep its caller
// sleeping.

/**
 * Takes a place in `queue` until someone calls it with a value. An abort (before or during the
 * wait) leaves the queue and rejects with the signal's reason.
 */
export function waitInQueue<T>(queue: Array<(value: T) => void>, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const take = (value: T): void => {
      signal?.removeEventListener("abort", onAbort);
      resolve(value);
    };
    const onAbort = (): void => {
      const i = queue.indexOf(take);
      if (i >= 0) queue.splice(i, 1);
      reject(signal?.reason ?? new Error("aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    queue.push(take);
  });
}

/** Resolves after `ms`, or as soon as `signal` aborts: the caller looks at the signal afterwards. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Waits for `promise`, or rejects with the signal's reason as soon as `signal` aborts (also when
 * it already has); `promise` itself goes on.
 */
export async function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  let onAbort = (): void => undefined;
  const left = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
  });
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([promise, left]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
