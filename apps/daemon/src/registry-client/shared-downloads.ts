// One download per blob in this daemon, whoever asked for it (pull.ts): a pull that names a blob
// already being downloaded waits for that download and shows its progress. A pull that is
// cancelled stops waiting at once, but the download goes on for the others still waiting (another
// client pulling a model that shares the blob); the last one to leave cancels it. A pull that
// arrives while such an abandoned download is still stopping waits for it to end, then starts a
// new one: joining it would fail the new pull with the old ones' cancellation, and starting beside
// it would put two downloads into the same partial files.

import { SingleFlight } from "@corral/shared/single-flight";
import { debugLog } from "../log.ts";
import { untilAborted } from "../abortable-wait.ts";

/** Where a download's progress goes: bytes completed and the total. */
export type ProgressListener = (completed: number, total: number) => void;

/** Starts a download: it reports progress and stops when `signal` aborts. */
export type StartDownload = (report: ProgressListener, signal: AbortSignal) => Promise<void>;

interface SharedDownload {
  promise: Promise<void>;
  listeners: Set<ProgressListener>;
  /** Pulls waiting for it; the download is cancelled only when the last of them leaves. */
  waiting: number;
  controller: AbortController;
}

const inFlight = new SingleFlight<string, SharedDownload>();

function sharedDownload(key: string, start: StartDownload): SharedDownload {
  if (inFlight.get(key)) debugLog("pull joins a download under way", { digest: key });
  return inFlight.join(
    key,
    () => {
      const created: SharedDownload = { promise: Promise.resolve(), listeners: new Set(), waiting: 0, controller: new AbortController() };
      created.promise = start((c, t) => {
        for (const l of created.listeners) l(c, t);
      }, created.controller.signal);
      return created;
    },
    (d) => d.promise,
  );
}

/** Waits for a shared download on behalf of one pull, leaving it when `signal` aborts. */
async function awaitShared(d: SharedDownload, key: string, signal: AbortSignal | undefined): Promise<void> {
  d.waiting++;
  try {
    await untilAborted(d.promise, signal);
  } finally {
    d.waiting--;
    if (signal?.aborted) debugLog("pull leaves a download", { digest: key, still_waiting: d.waiting });
    if (d.waiting === 0) d.controller.abort(new Error("every pull that wanted this blob was cancelled"));
  }
}

/**
 * Downloads the blob `key` for one pull, or waits for the download of it under way; `report`
 * sees the progress. Resolves once the blob is in the store; `signal` ends this pull's wait.
 */
export async function awaitDownload(key: string, start: StartDownload, report: ProgressListener, signal?: AbortSignal): Promise<void> {
  for (;;) {
    signal?.throwIfAborted();
    const abandoned = inFlight.get(key);
    if (abandoned?.controller.signal.aborted) {
      debugLog("pull waits for an abandoned download to stop", { digest: key });
      await untilAborted(abandoned.promise.catch(() => undefined), signal);
      continue;
    }
    const d = sharedDownload(key, start);
    d.listeners.add(report);
    try {
      return await awaitShared(d, key, signal);
    } finally {
      d.listeners.delete(report);
    }
  }
}
