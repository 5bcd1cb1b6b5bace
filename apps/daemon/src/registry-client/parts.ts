// How a blob is cut into parts for chunked uploads (§5.6) and ranged downloads (§5.4).
// Uploads follow Ollama: a sixteenth of the blob, at least 100 MB and at most 1000 MB, so small
// blobs go in one chunk; the chunks travel one after another, so fewer is better. Downloads use
// smaller parts, a sixty-fourth of the blob between 16 MB and 128 MB: sixteen of them are in
// flight at once, and with small parts the finished front of the file grows steadily, so the
// sha256 that follows it is nearly done when the last byte arrives (with sixteen equal parts
// the whole blob would be hashed after the download). CORRAL_TRANSFER_PART_MIN lowers the floor
// of both (tests use it to get several parts from small blobs).

export interface Part {
  n: number;
  offset: number;
  size: number;
}

function floor(env: NodeJS.ProcessEnv, fallback: number): number {
  const min = Number(env["CORRAL_TRANSFER_PART_MIN"]);
  return min > 0 ? min : fallback;
}

/** Chunks of an upload. */
export function planParts(total: number, env: NodeJS.ProcessEnv = process.env): Part[] {
  return cut(total, Math.min(Math.max(Math.ceil(total / 16), floor(env, 100_000_000)), 1_000_000_000));
}

/** Ranges of a download. */
export function planRanges(total: number, env: NodeJS.ProcessEnv = process.env): Part[] {
  return cut(total, Math.max(Math.min(Math.ceil(total / 64), 128 << 20), floor(env, 16 << 20)));
}

function cut(total: number, size: number): Part[] {
  const parts: Part[] = [];
  for (let offset = 0, n = 0; offset < total; offset += size, n++) parts.push({ n, offset, size: Math.min(size, total - offset) });
  return parts;
}

/** Parts in flight at once (Ollama: 16). */
export function transferConcurrency(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env["CORRAL_TRANSFER_CONCURRENCY"]);
  return Number.isInteger(n) && n > 0 ? n : 16;
}

/** Runs `fn` over `items` with at most `limit` at once; the first failure rejects. */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}
