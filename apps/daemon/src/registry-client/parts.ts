// How a blob is cut into parts for chunked uploads (docs/protocol.md, "Uploading a blob") and ranged downloads (docs/protocol.md, "Downloading a blob").
// Uploads follow Ollama: a sixteenth of the blob, at least 100 MB and at most 1000 MB, so small
// blobs go in one chunk; the chunks travel one after another, so fewer is better. Downloads use
// parts of 16 MiB (a sixty-fourth of a smaller blob, where CORRAL_TRANSFER_PART_MIN allows it): up
// to sixteen of them are in flight at once (stream-ramp.ts), and with small parts the finished
// front of the file grows steadily, so the sha256 that follows it is nearly done when the last byte
// arrives (with sixteen equal parts the whole blob would be hashed after the download), and what
// the streams have in flight fits the hash window (hash-window.mjs): with 64 MiB parts a 4 GiB pull
// read most of the blob back from the disk for its hash, and took 6.8-8.4 s instead of 5.0-6.5
// (five pairs; README, "What Node and the disk allow"). CORRAL_TRANSFER_PART_MIN lowers the floor
// of both (tests use it to get several parts from small blobs). A download is never cut into more
// than MAX_RANGES parts, whatever size the registry declares: each part has a state file on disk.

import { daemonConfig, type DaemonConfig } from "../config.ts";

/** The settings that size parts. */
type PartConfig = Pick<DaemonConfig, "transferPartMin">;

export interface Part {
  n: number;
  offset: number;
  size: number;
}

function floor(config: PartConfig, fallback: number): number {
  return config.transferPartMin ?? fallback;
}

/** Chunks of an upload. */
export function planParts(total: number, config: PartConfig = daemonConfig()): Part[] {
  return cut(total, Math.min(Math.max(Math.ceil(total / 16), floor(config, 100_000_000)), 1_000_000_000));
}

/** The most parts a download is cut into: beyond that (past 16 GiB with the default sizes) the parts grow. */
export const MAX_RANGES = 1024;

/** Ranges of a download. */
export function planRanges(total: number, config: PartConfig = daemonConfig()): Part[] {
  const size = Math.max(Math.min(Math.ceil(total / 64), 16 << 20), floor(config, 16 << 20));
  return cut(total, Math.max(size, Math.ceil(total / MAX_RANGES)));
}

function cut(total: number, size: number): Part[] {
  const parts: Part[] = [];
  for (let offset = 0, n = 0; offset < total; offset += size, n++) parts.push({ n, offset, size: Math.min(size, total - offset) });
  return parts;
}

/** A limit that can rise while items run: it calls `onRaise` when it does. */
export interface RisingLimit {
  readonly limit: number;
  onRaise: () => void;
}

/**
 * Runs `fn` over `items`, at most `limit` at once (a rising limit is read each time one may
 * start). After the first failure nothing new starts; it is raised once those running finished.
 */
export function forEachLimit<T>(items: T[], limit: number | RisingLimit, fn: (item: T) => Promise<void>): Promise<void> {
  const max = (): number => (typeof limit === "number" ? limit : limit.limit);
  return new Promise((resolve, reject) => {
    let next = 0;
    let running = 0;
    let failed: { error: unknown } | undefined;
    const start = (): void => {
      while (!failed && next < items.length && running < max()) {
        const item = items[next++]!;
        running++;
        fn(item)
          .catch((e: unknown) => void (failed ??= { error: e }))
          .finally(() => {
            running--;
            start();
            if (running > 0 || (!failed && next < items.length)) return;
            if (failed) reject(failed.error);
            else resolve();
          });
      }
    };
    if (typeof limit !== "number") limit.onRaise = start;
    if (items.length === 0) resolve();
    else start();
  });
}
