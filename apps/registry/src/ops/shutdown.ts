// Graceful shutdown: stop accepting connections, let requests in flight finish (up to a timeout),
// close each connection once it is idle, and only then let the caller close the database. A blob
// upload cut off at the timeout loses nothing it had committed: its session and size live in the
// database, so the client resumes from the last accepted chunk on this or another instance.

import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { RequestTracker } from "./requests.ts";

const POLL_MS = 50;
/** How long an ended connection may take to close before it is destroyed. */
const LINGER_MS = 2_000;

export interface DrainResult {
  /** Requests still running when the timeout came; their connections were destroyed. */
  abandoned: number;
  ms: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function drain(server: Server, tracker: RequestTracker, timeoutMs: number): Promise<DrainResult> {
  const start = Date.now();
  tracker.startDraining();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const ended = new WeakSet<Socket>();
  // end() rather than destroy(): a response's last bytes may still be queued on the socket.
  const endIdle = (): void => {
    for (const s of tracker.sockets) {
      if (!ended.has(s) && !tracker.busy(s)) {
        ended.add(s);
        s.end();
      }
    }
  };
  const deadline = start + timeoutMs;
  for (;;) {
    endIdle();
    if (tracker.inFlight === 0 || Date.now() >= deadline) break;
    await sleep(POLL_MS);
  }
  const abandoned = tracker.inFlight;
  for (const s of tracker.sockets) if (tracker.busy(s)) s.destroy();
  const lingerUntil = Date.now() + LINGER_MS;
  while (tracker.sockets.size > 0 && Date.now() < lingerUntil) {
    endIdle();
    await sleep(POLL_MS);
  }
  for (const s of tracker.sockets) s.destroy();
  await closed;
  return { abandoned, ms: Date.now() - start };
}

/**
 * Runs `stop` on the first SIGTERM or SIGINT; a second signal exits at once (an operator who
 * presses Ctrl-C twice means it).
 */
export function onShutdownSignals(stop: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    stopping = true;
    stop(signal).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}
