// Downloading one blob in parallel ranged parts (docs/protocol.md, "Downloading a blob") into the
// store's partial download (store/partial-downloads.ts), which a daemon killed mid-blob resumes
// from. The first request is the first part's ranged GET: it follows the registry's redirect to
// where the bytes are (the registry itself, or object storage), and its Content-Range gives the
// size the manifest must agree with; the other parts then go straight there. Each part is written
// at its own offset as it arrives, on the download thread (range-fetcher.ts), while the sha256
// follows the finished front of the file on a thread of its own (prefix-hasher.ts). The blob becomes visible only after its sha256 matched
// and its bytes reached the disk: a manifest (written durably) never names a blob that a power cut
// could empty. A download that fails for good (the registry answered with an error, broke the
// protocol or sent other bytes) removes its files; one that was interrupted keeps them.

import { prefixHasher } from "@corral/shared/prefix-hasher";
import { BackgroundFlush } from "@corral/shared/background-flush";
import { noSpaceError, type BlobStore } from "../store/blobs.ts";
import { PartialDownload, type PartState } from "../store/partial-downloads.ts";
import { MAX_REDIRECTS, REDIRECTS, USER_AGENT, type RegistrySession } from "./session.ts";
import { RegistryError, TransportError } from "./registry-errors.ts";
import { rangeFetcher } from "./range-fetcher.ts";
import { forEachLimit, planRanges } from "./parts.ts";
import { START_STREAMS, streamRamp } from "./stream-ramp.ts";
import { withRetries } from "./retry-policy.ts";
import { StallWatchdog } from "./stall-watchdog.ts";

export class DigestMismatchError extends Error {
  constructor(want: string, got: string) {
    super(`digest mismatch, file must be downloaded again: want ${want}, got ${got}`);
    this.name = "DigestMismatchError";
  }
}

export interface DownloadOptions {
  session: RegistrySession;
  blobs: BlobStore;
  digest: string;
  /** Size from the manifest: the registry must agree. */
  size: number;
  onProgress: (completed: number, total: number) => void;
  signal?: AbortSignal;
}

/** How often a part's progress is recorded while it runs (a resumed pull refetches at most this much of it). */
const SAVE_EVERY_MS = 1000;

export async function downloadBlob(o: DownloadOptions): Promise<void> {
  let d = await PartialDownload.resume(o.blobs, o.digest);
  if (d && d.total !== o.size) {
    // Left by a pull of a manifest that declared another size: nothing in it can be trusted.
    await d.discard();
    d = undefined;
  }
  d ??= await PartialDownload.begin(o.blobs, o.digest, planRanges(o.size));
  try {
    await fetchParts(o, d);
  } catch (e) {
    if (!worthResuming(e, o.signal)) await d.discard();
    throw e;
  }
}

/**
 * Whether the files of a failed download are worth keeping for the next pull: yes when it was
 * interrupted (cancelled, a connection lost or stalled, the disk full, a local file error), no
 * when the registry answered with an error, broke the protocol or sent other bytes, which the
 * next pull would only meet again (and which would leave a pre-sized data file of any size the
 * registry declared, with a state file per part, until the start-up prune an hour later).
 */
function worthResuming(e: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  if (e instanceof DigestMismatchError) return false;
  return !(e instanceof RegistryError) || e instanceof TransportError;
}

/** What the parts of one download share while they run. */
interface Transfer {
  o: DownloadOptions;
  d: PartialDownload;
  /** Where the bytes are once an answer showed it; until then the registry's blob URL. */
  bytesURL: string | undefined;
  /** Settles when the first part's answer arrived (or failed), so the others follow its redirect. */
  located: Promise<void>;
  onWritten: (n: number) => void;
  /** The hash window the download thread puts written pages in (prefix-hasher.ts). */
  window: SharedArrayBuffer | undefined;
  /** States of finished parts still being saved; the download's files are not touched until they are. */
  saving: Set<Promise<void>>;
}

async function fetchParts(o: DownloadOptions, d: PartialDownload): Promise<void> {
  const { digest, signal } = o;
  const total = d.total;
  const report = (): void => o.onProgress(d.completed, total);
  report();

  const todo = d.parts.filter((p) => p.Completed < p.Size);
  const fh = await d.openData();
  const hasher = await prefixHasher(d.dataPath, total, { partSize: d.parts[0]?.Size, streams: START_STREAMS });
  const flusher = new BackgroundFlush(fh);
  const saving = new Set<Promise<void>>();
  let got: string;
  try {
    if (todo.length > 0) {
      const ramp = streamRamp();
      let locatedNow!: () => void;
      const t: Transfer = {
        o,
        d,
        bytesURL: undefined,
        located: new Promise((resolve) => (locatedNow = resolve)),
        window: hasher.window,
        saving,
        onWritten: (n) => {
          report();
          hasher.follow(d.prefix());
          flusher.wrote(n);
          ramp.wrote(n);
        },
      };
      let first = true;
      let abandoned = false;
      await forEachLimit(todo, ramp, async (p) => {
        const leads = first;
        first = false;
        if (!leads) {
          await t.located;
          // The leading part failed for good: the others would meet the same answer.
          if (abandoned) return;
        }
        try {
          await withRetries(
            async () => {
              try {
                await fetchPart(t, p, leads ? locatedNow : undefined);
              } catch (e) {
                await d.save(p).catch(() => undefined);
                if ((e as NodeJS.ErrnoException).code === "ENOSPC") throw noSpaceError(e, `blob ${digest} to ${d.dataPath}`);
                throw e;
              }
            },
            signal ? { signal } : {},
          );
        } catch (e) {
          if (leads) abandoned = true;
          throw e;
        } finally {
          if (leads) locatedNow();
        }
      });
    }
    [got] = await Promise.all([hasher.finish(total), flusher.finish()]);
  } finally {
    // A state saved after commit() or discard() removed the others would be left behind.
    await Promise.all(saving);
    await hasher.close();
    await flusher.settle();
    await fh.close();
  }
  if (got !== digest) throw new DigestMismatchError(digest, got);
  await d.commit();
}

/**
 * Downloads what is missing of one part on the download thread, keeping its state current. The
 * session on this thread judges what an answer without bytes means: a redirect is followed (the
 * token goes only to the registry), a 401 from the registry gets a new token once, anything else
 * is an error. `located` is called once the bytes begin: the URL that gave them is where the
 * blob is, and the other parts, which wait for the leading one, go straight there.
 */
async function fetchPart(t: Transfer, p: PartState, located: (() => void) | undefined): Promise<void> {
  const { session, digest, size } = t.o;
  const start = p.Offset + p.Completed;
  const end = p.Offset + p.Size - 1;
  const watchdog = new StallWatchdog(`part ${p.N + 1} of ${digest}`, t.o.signal);
  let url = t.bytesURL ?? session.url(`/blobs/${digest}`);
  let lastSave = performance.now();
  let saving: Promise<void> | undefined;
  try {
    for (let hops = 0, renewed = false; ; ) {
      const job = {
        url,
        headers: { "User-Agent": USER_AGENT, ...session.credentials(url), Range: `bytes=${start}-${end}` },
        path: t.d.dataPath,
        start,
        end,
        wholeOK: start === 0 && end === size - 1,
        total: size,
        window: t.window,
      };
      const answer = await rangeFetcher.fetch(
        job,
        {
          onAlive: () => watchdog.moved(),
          onStarted: () => {
            watchdog.moved();
            t.bytesURL = url;
            located?.();
          },
          onWritten: (n) => {
            watchdog.moved();
            p.Completed += n;
            t.onWritten(n);
            if (!saving && performance.now() - lastSave > SAVE_EVERY_MS) {
              lastSave = performance.now();
              saving = t.d
                .save(p)
                .catch(() => undefined)
                .finally(() => (saving = undefined));
            }
          },
        },
        watchdog.signal,
      );
      if (!answer) break;
      watchdog.moved();
      if (REDIRECTS.has(answer.status) && answer.location) {
        if (++hops > MAX_REDIRECTS) throw new RegistryError(502, `too many redirects fetching ${digest}`);
        url = new URL(answer.location, url).toString();
        continue;
      }
      if (answer.status === 401 && !renewed) {
        renewed = true;
        await session.reauthorize(url, answer.challenge, t.o.signal);
        continue;
      }
      if (answer.status === 401) throw session.isRegistry(url) ? new RegistryError(401, "unauthorized: access denied") : session.foreignChallenge(url);
      if (answer.status === 404) throw new RegistryError(404, `blob ${digest} not found on the registry`);
      throw new RegistryError(answer.status >= 400 ? answer.status : 502, `ranged GET of ${digest} answered ${answer.status}${answer.text.trim() ? `: ${answer.text.trim()}` : ", expected 206 Partial Content"}`);
    }
  } catch (e) {
    throw watchdog.failure(e);
  } finally {
    watchdog.stop();
    await saving;
  }
  // The finished part's state is saved (durably, as every state) while the next part already runs:
  // waiting for it held a stream idle for 5-60 ms per part, a tenth of a 1 GB pull on loopback.
  // Only a later pull that resumes reads it; a failure to save it costs that pull a refetch of the
  // part, not this one its bytes, which the digest covers.
  const saved: Promise<void> = t.d
    .save(p)
    .catch(() => undefined)
    .finally(() => t.saving.delete(saved));
  t.saving.add(saved);
}

