// Downloading one blob in parallel ranged parts with resumable state on disk (docs/protocol.md, "Downloading a blob"):
// data goes to blobs/sha256-<hex>-partial (pre-sized), each part's progress to
// blobs/sha256-<hex>-partial-<N> as {"N","Offset","Size","Completed"}. A daemon killed mid-blob
// resumes from those files. The blob becomes visible only after its sha256 matched and its bytes
// reached the disk: a manifest (written durably) never names a blob that a power cut could empty.
// A download that fails for good (the registry answered with an error, broke the protocol or sent
// other bytes) removes its files; one that was interrupted keeps them for the next pull.

import { open, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { digestHex } from "@corral/shared/digest";
import { prefixHasher } from "@corral/shared/prefix-hasher";
import { BackgroundFlush } from "@corral/shared/background-flush";
import { writeFileDurably } from "@corral/shared/durable-write";
import { pause } from "../abortable-wait.ts";
import { noSpaceError, type BlobStore } from "../store/blobs.ts";
import { USER_AGENT, type RegistrySession } from "./session.ts";
import { NotFoundError, RegistryError, TransportError } from "./registry-errors.ts";
import { rangeFetcher } from "./range-fetcher.ts";
import { forEachLimit, planRanges } from "./parts.ts";
import { streamRamp } from "./stream-ramp.ts";

interface PartState {
  N: number;
  Offset: number;
  Size: number;
  Completed: number;
}

export class DigestMismatchError extends Error {
  constructor(want: string, got: string) {
    super(`digest mismatch, file must be downloaded again: want ${want}, got ${got}`);
    this.name = "DigestMismatchError";
  }
}

/** Part state is replaced durably, so a crash never leaves a half-written state file (its `.tmp` is known to fsck). */
async function saveState(path: string, p: PartState): Promise<void> {
  await writeFileDurably(path, JSON.stringify(p), { tmp: `${path}.tmp` });
}

function partialPaths(blobs: BlobStore, digest: string): { data: string; part: (n: number) => string; prefix: string } {
  const base = `sha256-${digestHex(digest)}-partial`;
  return { data: join(blobs.dir, base), part: (n) => join(blobs.dir, `${base}-${n}`), prefix: `${base}-` };
}

/** Bytes an unfinished download of `digest` already holds on disk (its data file is sparse). */
export async function partialBytes(blobs: BlobStore, digest: string): Promise<number> {
  const st = await stat(partialPaths(blobs, digest).data).catch(() => undefined);
  return st ? Math.min(st.size, st.blocks * 512) : 0;
}

async function loadParts(blobs: BlobStore, digest: string): Promise<PartState[]> {
  const { prefix } = partialPaths(blobs, digest);
  const names = (await readdir(blobs.dir)).filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)));
  const parts: PartState[] = [];
  for (const n of names) {
    try {
      const p = JSON.parse(await readFile(join(blobs.dir, n), "utf8")) as PartState;
      if ([p.N, p.Offset, p.Size, p.Completed].every((x) => Number.isSafeInteger(x) && x >= 0) && p.Completed <= p.Size) parts.push(p);
      else return [];
    } catch {
      return [];
    }
  }
  parts.sort((a, b) => a.N - b.N);
  // A set of parts must tile the blob exactly; anything else starts over.
  for (let i = 0, off = 0; i < parts.length; off += parts[i]!.Size, i++) if (parts[i]!.N !== i || parts[i]!.Offset !== off) return [];
  return parts;
}

/** Where the bytes are: a 307's Location, a 200's Location, or (plain registries) the blob URL. */
async function directURL(session: RegistrySession, digest: string, signal?: AbortSignal): Promise<string> {
  const blobURL = session.url(`/blobs/${digest}`);
  let url = blobURL;
  for (let hops = 0; hops < 10; hops++) {
    const res = await session.request("GET", url, { redirect: "manual", accept: [301, 302, 303, 307, 308], ...(signal ? { signal } : {}) });
    await res.body?.cancel();
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400) {
      if (!location) throw new RegistryError(res.status, `registry answered ${res.status} without a Location for ${digest}`);
      const next = new URL(location, url);
      if (session.isRegistry(next)) {
        url = next.toString();
        continue;
      }
      return next.toString();
    }
    if (location) return new URL(location, session.fix(url)).toString();
    // Distribution serves the bytes itself and honours Range there.
    return url;
  }
  throw new RegistryError(502, `too many redirects fetching ${digest}`);
}

export interface DownloadOptions {
  session: RegistrySession;
  blobs: BlobStore;
  digest: string;
  /** Size from the manifest, used when planning a fresh download. */
  size: number;
  onProgress: (completed: number, total: number) => void;
  signal?: AbortSignal;
}

export async function downloadBlob(o: DownloadOptions): Promise<void> {
  const { session, blobs, digest, signal } = o;
  const paths = partialPaths(blobs, digest);
  let parts = await loadParts(blobs, digest);
  if (parts.length === 0) {
    let total = o.size;
    try {
      const head = await session.request("HEAD", session.url(`/blobs/${digest}`), signal ? { signal } : {});
      const len = Number(head.headers.get("content-length"));
      if (Number.isSafeInteger(len) && len >= 0 && head.headers.has("content-length")) total = len;
    } catch (e) {
      if (e instanceof NotFoundError) throw new RegistryError(404, `blob ${digest} not found on the registry`);
      throw e;
    }
    if (total !== o.size) throw new RegistryError(502, `the registry has ${total} bytes for ${digest}, the manifest says ${o.size}`);
    parts = planRanges(total).map((p) => ({ N: p.n, Offset: p.offset, Size: p.size, Completed: 0 }));
    try {
      await rm(paths.data, { force: true });
      const fh = await open(paths.data, "w");
      try {
        await fh.truncate(total);
      } finally {
        await fh.close();
      }
      for (const p of parts) await saveState(paths.part(p.N), p);
    } catch (e) {
      // Half a plan resumes nothing.
      await removePartial(paths, parts);
      throw noSpaceError(e, `the parts of blob ${digest} to ${blobs.dir}`);
    }
  }
  try {
    await fetchParts(o, paths, parts);
  } catch (e) {
    if (!worthResuming(e, signal)) await removePartial(paths, parts);
    throw e;
  }
}

/**
 * Whether the files of a failed download are worth keeping for the next pull: yes when it was
 * interrupted (cancelled, a connection lost, the disk full, a local file error), no when the
 * registry answered with an error, broke the protocol or sent other bytes, which the next pull
 * would only meet again (and which would leave a pre-sized data file of any size the registry
 * declared, with a state file per part, until the start-up prune an hour later).
 */
function worthResuming(e: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  if (e instanceof DigestMismatchError) return false;
  return !(e instanceof RegistryError) || e instanceof TransportError;
}

/** Statuses that another attempt at the same range may not meet: the server's trouble, a timeout, a rate limit. */
function retryable(e: unknown): boolean {
  if (!(e instanceof RegistryError) || e instanceof TransportError) return true;
  return e.status >= 500 || e.status === 408 || e.status === 429;
}

async function fetchParts(o: DownloadOptions, paths: ReturnType<typeof partialPaths>, parts: PartState[]): Promise<void> {
  const { session, blobs, digest, signal } = o;
  const total = parts.reduce((n, p) => n + p.Size, 0);
  const report = (): void => o.onProgress(parts.reduce((n, p) => n + p.Completed, 0), total);
  report();

  const todo = parts.filter((p) => p.Completed < p.Size);
  const fh = await open(paths.data, "r+");
  const hasher = await prefixHasher(paths.data, total);
  const prefix = (): number => {
    let end = 0;
    for (const p of parts) {
      end = p.Offset + p.Completed;
      if (p.Completed < p.Size) break;
    }
    return end;
  };
  const flusher = new BackgroundFlush(fh);
  let got: string;
  try {
    if (todo.length > 0) {
      const url = await directURL(session, digest, signal);
      const ramp = streamRamp();
      await forEachLimit(todo, ramp, async (p) => {
        for (let attempt = 0; ; attempt++) {
          try {
            await fetchPart(session, url, p, paths.data, total, (n) => {
              report();
              hasher.follow(prefix());
              flusher.wrote(n);
              ramp.wrote(n);
            }, paths.part(p.N), signal);
            return;
          } catch (e) {
            await saveState(paths.part(p.N), p).catch(() => undefined);
            if ((e as NodeJS.ErrnoException).code === "ENOSPC") throw noSpaceError(e, `blob ${digest} to ${paths.data}`);
            if (e instanceof RegistryError && e.status === 401) {
              // Bytes elsewhere (object storage) come without asking for credentials.
              if (!session.isRegistry(url)) throw session.foreignChallenge(url);
              // An expired token: one request through the session fetches a new one.
              if (!signal?.aborted && attempt < 5) {
                await session.request("HEAD", url, signal ? { signal } : {});
                continue;
              }
            }
            if (signal?.aborted || attempt >= 5 || !retryable(e)) throw e;
            await pause(Math.min(1000 * 2 ** attempt, 32_000), signal);
          }
        }
      });
    }
    [got] = await Promise.all([hasher.finish(total), flusher.finish()]);
  } finally {
    await hasher.close();
    await flusher.settle();
    await fh.close();
  }
  if (got !== digest) throw new DigestMismatchError(digest, got);
  if (!(await blobs.commit(paths.data, digest))) await rm(paths.data, { force: true });
  await removeStates(paths, parts);
}

/** Removes a download's data file and its parts' states. */
async function removePartial(paths: ReturnType<typeof partialPaths>, parts: PartState[]): Promise<void> {
  await rm(paths.data, { force: true });
  await removeStates(paths, parts);
}

/** Removes the parts' state files, and any a kill left half replaced (saveState's .tmp). */
async function removeStates(paths: { part: (n: number) => string }, parts: PartState[]): Promise<void> {
  for (const p of parts) {
    await rm(paths.part(p.N), { force: true });
    await rm(`${paths.part(p.N)}.tmp`, { force: true });
  }
}

/** Downloads what is missing of one part on the download thread, keeping its state file current. */
async function fetchPart(
  session: RegistrySession,
  url: string,
  p: PartState,
  dataPath: string,
  total: number,
  onWritten: (n: number) => void,
  statePath: string,
  signal?: AbortSignal,
): Promise<void> {
  const start = p.Offset + p.Completed;
  const end = p.Offset + p.Size - 1;
  const headers = { "User-Agent": USER_AGENT, ...session.credentials(url), Range: `bytes=${start}-${end}` };
  let lastSave = Date.now();
  let saving: Promise<void> | undefined;
  try {
    await rangeFetcher.fetch({ url, headers, path: dataPath, start, end, wholeOK: start === 0 && p.Size === total }, (n) => {
      p.Completed += n;
      onWritten(n);
      if (!saving && Date.now() - lastSave > 200) {
        lastSave = Date.now();
        saving = saveState(statePath, p)
          .catch(() => undefined)
          .finally(() => (saving = undefined));
      }
    }, signal);
  } finally {
    await saving;
  }
  await saveState(statePath, p);
}

/** Removes what an abandoned download left (the prune at start-up does the same after an hour). */
export async function discardPartial(blobs: BlobStore, digest: string): Promise<void> {
  const paths = partialPaths(blobs, digest);
  await removePartial(paths, await loadParts(blobs, digest));
}
