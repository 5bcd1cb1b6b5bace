// Downloading one blob in parallel ranged parts with resumable state on disk (§5.4):
// data goes to blobs/sha256-<hex>-partial (pre-sized), each part's progress to
// blobs/sha256-<hex>-partial-<N> as {"N","Offset","Size","Completed"}. A daemon killed mid-blob
// resumes from those files. The blob becomes visible only after its sha256 matched.

import { open, readdir, readFile, rename, rm, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { digestHex } from "@corral/shared/digest";
import { noSpaceError, type BlobStore } from "../store/blobs.ts";
import { NotFoundError, RegistryError, type RegistrySession } from "./session.ts";
import { forEachLimit, planParts, transferConcurrency } from "./parts.ts";

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

/** Part state is replaced with a rename, so a crash never leaves a half-written state file. */
async function saveState(path: string, p: PartState): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify(p));
  await rename(tmp, path);
}

function partialPaths(blobs: BlobStore, digest: string): { data: string; part: (n: number) => string; prefix: string } {
  const base = `sha256-${digestHex(digest)}-partial`;
  return { data: join(blobs.dir, base), part: (n) => join(blobs.dir, `${base}-${n}`), prefix: `${base}-` };
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
async function directURL(session: RegistrySession, digest: string, signal?: AbortSignal): Promise<{ url: string; auth: boolean }> {
  const blobURL = session.url(`/blobs/${digest}`);
  let url = blobURL;
  for (let hops = 0; hops < 10; hops++) {
    const res = await session.request("GET", url, { redirect: "manual", accept: [301, 302, 303, 307, 308], ...(signal ? { signal } : {}) });
    await res.body?.cancel();
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400) {
      if (!location) throw new RegistryError(res.status, `registry answered ${res.status} without a Location for ${digest}`);
      const next = new URL(location, url);
      if (next.host === new URL(session.fix(blobURL)).host) {
        url = next.toString();
        continue;
      }
      return { url: next.toString(), auth: false };
    }
    if (location) return { url: new URL(location, session.fix(url)).toString(), auth: new URL(location, session.fix(url)).host === new URL(session.fix(blobURL)).host };
    // Distribution serves the bytes itself and honours Range there.
    return { url, auth: true };
  }
  throw new RegistryError(0, `too many redirects fetching ${digest}`);
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
    if (total !== o.size) throw new RegistryError(0, `the registry has ${total} bytes for ${digest}, the manifest says ${o.size}`);
    await rm(paths.data, { force: true });
    parts = planParts(total).map((p) => ({ N: p.n, Offset: p.offset, Size: p.size, Completed: 0 }));
    const fh = await open(paths.data, "w");
    await fh.truncate(total);
    await fh.close();
    for (const p of parts) await saveState(paths.part(p.N), p);
  }
  const total = parts.reduce((n, p) => n + p.Size, 0);
  const report = (): void => o.onProgress(parts.reduce((n, p) => n + p.Completed, 0), total);
  report();

  const todo = parts.filter((p) => p.Completed < p.Size);
  const fh = await open(paths.data, "r+");
  // The sha256 follows the downloaded prefix of the file while later parts are still arriving,
  // so verifying costs little once the last byte is in.
  const hasher = new PrefixHasher(fh);
  const prefix = (): number => {
    let end = 0;
    for (const p of parts) {
      end = p.Offset + p.Completed;
      if (p.Completed < p.Size) break;
    }
    return end;
  };
  let got: string;
  try {
    if (todo.length > 0) {
      const direct = await directURL(session, digest, signal);
      await forEachLimit(todo, transferConcurrency(), async (p) => {
        for (let attempt = 0; ; attempt++) {
          try {
            await fetchPart(session, direct, p, fh, () => {
              report();
              hasher.follow(prefix());
            }, paths.part(p.N), signal);
            return;
          } catch (e) {
            await saveState(paths.part(p.N), p).catch(() => undefined);
            if ((e as NodeJS.ErrnoException).code === "ENOSPC") throw noSpaceError(e, `blob ${digest} to ${paths.data}`);
            if (signal?.aborted || attempt >= 5 || e instanceof NotFoundError) throw e;
            await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 32_000)));
          }
        }
      });
    }
    got = await hasher.finish(total);
  } finally {
    await fh.close();
  }
  if (got !== digest) {
    await rm(paths.data, { force: true });
    for (const p of parts) await rm(paths.part(p.N), { force: true });
    throw new DigestMismatchError(digest, got);
  }
  if (!(await blobs.commit(paths.data, digest))) await rm(paths.data, { force: true });
  for (const p of parts) {
    await rm(paths.part(p.N), { force: true });
    await rm(`${paths.part(p.N)}.tmp`, { force: true });
  }
}

async function fetchPart(
  session: RegistrySession,
  direct: { url: string; auth: boolean },
  p: PartState,
  fh: FileHandle,
  report: () => void,
  statePath: string,
  signal?: AbortSignal,
): Promise<void> {
  const start = p.Offset + p.Completed;
  const end = p.Offset + p.Size - 1;
  const headers: Record<string, string> = { Range: `bytes=${start}-${end}` };
  const res = direct.auth
    ? await session.request("GET", direct.url, { headers, ...(signal ? { signal } : {}) })
    : await fetch(direct.url, { headers, ...(signal ? { signal } : {}) });
  if (res.status !== 206 && !(res.status === 200 && start === 0 && res.headers.get("content-length") === String(p.Size))) {
    await res.body?.cancel();
    throw new RegistryError(res.status, `ranged GET of ${direct.url} answered ${res.status}, expected 206 Partial Content`);
  }
  let lastSave = Date.now();
  let pos = start;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const want = end + 1 - pos;
    const buf = chunk.length > want ? chunk.subarray(0, want) : chunk;
    await fh.write(buf, 0, buf.length, pos);
    pos += buf.length;
    p.Completed += buf.length;
    report();
    if (Date.now() - lastSave > 200) {
      lastSave = Date.now();
      await saveState(statePath, p);
    }
    if (pos > end) break;
  }
  if (pos <= end) throw new RegistryError(0, `connection closed after ${pos - start} of ${end + 1 - start} bytes of a part`);
  await saveState(statePath, p);
}

/** Removes what an abandoned download left (the prune at start-up does the same after an hour). */
export async function discardPartial(blobs: BlobStore, digest: string): Promise<void> {
  const paths = partialPaths(blobs, digest);
  await rm(paths.data, { force: true });
  for (const p of await loadParts(blobs, digest)) await rm(paths.part(p.N), { force: true });
}

/** Hashes a file front to back as far as it has been written, one read at a time. */
class PrefixHasher {
  private readonly hash = createHash("sha256");
  private pos = 0;
  private target = 0;
  private running: Promise<void> | undefined;
  private readonly buf = Buffer.allocUnsafe(4 << 20);

  constructor(private readonly fh: FileHandle) {}

  follow(upTo: number): void {
    this.target = Math.max(this.target, upTo);
    this.running ??= this.run().finally(() => (this.running = undefined));
  }

  private async run(): Promise<void> {
    while (this.pos < this.target) {
      const { bytesRead } = await this.fh.read(this.buf, 0, Math.min(this.buf.length, this.target - this.pos), this.pos);
      if (bytesRead === 0) break;
      this.hash.update(this.buf.subarray(0, bytesRead));
      this.pos += bytesRead;
    }
  }

  async finish(total: number): Promise<string> {
    while (this.running) await this.running;
    this.target = total;
    await this.run();
    return `sha256:${this.hash.digest("hex")}`;
  }
}
