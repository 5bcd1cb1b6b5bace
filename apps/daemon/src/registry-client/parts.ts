// How a blob is cut into parts for ranged downloads and chunked uploads (§5.4, §5.6): a
// sixteenth of the blob, at least 100 MB and at most 1000 MB, so small blobs go in one part.
// CORRAL_TRANSFER_PART_MIN lowers the floor (tests use it to get several parts from small blobs).

export interface Part {
  n: number;
  offset: number;
  size: number;
}

export function partSize(total: number, env: NodeJS.ProcessEnv = process.env): number {
  const min = Number(env["CORRAL_TRANSFER_PART_MIN"]) > 0 ? Number(env["CORRAL_TRANSFER_PART_MIN"]) : 100_000_000;
  return Math.min(Math.max(Math.ceil(total / 16), min), 1_000_000_000);
}

export function planParts(total: number, env: NodeJS.ProcessEnv = process.env): Part[] {
  const size = partSize(total, env);
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
