// Uploading one blob (docs/protocol.md, "Uploading a blob"): mount from another repository when the layer says where it came
// from, else a session with chunked PATCHes (Ollama's `Content-Range: a-b` form and
// X-Redirect-Uploads, following a 307 to object storage with a PUT), then the finalising PUT with
// the digest, and the S3-style etag when object storage took parts.

import { createHash } from "node:crypto";
import { createReadStream, open as openFd } from "node:fs";
import type { ClientRequest } from "node:http";
import { pumpFile } from "@corral/shared/file-pump";
import { Readable } from "node:stream";
import { ModelName } from "@corral/shared/name";
import { USER_AGENT, type RegistrySession } from "./session.ts";
import { RegistryError, TransportError } from "./registry-errors.ts";
import { bodyText, bulkRequest, discard } from "./bulk-http.ts";
import { planParts, type Part } from "./parts.ts";
import { withRetries } from "./retry-policy.ts";
import { StallWatchdog } from "./stall-watchdog.ts";
import { encodeQuery } from "@corral/shared/signing";

export interface UploadOptions {
  session: RegistrySession;
  digest: string;
  size: number;
  path: string;
  /** The layer's provenance: a local model name to mount from. */
  from?: string;
  onProgress: (completed: number, total: number) => void;
  signal?: AbortSignal;
}

function nextURL(status: number, loc: string | null, current: string): string {
  if (!loc) throw new RegistryError(status, "the registry answered an upload request without a Location");
  return new URL(loc, current).toString();
}

/** A part of the blob file as a stream, counting bytes as they are read. */
function partStream(path: string, p: Part, onBytes: (n: number) => void, md5: ReturnType<typeof createHash>): Readable {
  const stream = p.size === 0 ? Readable.from([]) : createReadStream(path, { start: p.offset, end: p.offset + p.size - 1, highWaterMark: 1 << 20 });
  stream.on("data", (chunk: Buffer) => {
    md5.update(chunk);
    onBytes(chunk.length);
  });
  return stream;
}

/** Writes a part of the blob file as a request body through pooled buffers (see file-pump.ts). */
async function sendPart(path: string, p: Part, req: ClientRequest, onBytes: (n: number) => void): Promise<void> {
  if (p.size === 0) {
    req.end();
    return;
  }
  // A plain descriptor, which the pump closes (a FileHandle would also close itself when collected).
  const fd = await new Promise<number>((resolve, reject) => openFd(path, "r", (e, n) => (e ? reject(e) : resolve(n))));
  await pumpFile({ fd, start: p.offset, end: p.offset + p.size - 1 }, req, onBytes);
}

/** MD5 of a part read back from the file: only needed for an etag when some parts went elsewhere. */
async function partMD5(path: string, start: number, size: number): Promise<Buffer> {
  const md5 = createHash("md5");
  if (size > 0) for await (const chunk of createReadStream(path, { start, end: start + size - 1, highWaterMark: 1 << 20 })) md5.update(chunk as Buffer);
  return md5.digest();
}

interface ChunkRequest {
  o: UploadOptions;
  part: Part;
  /** The upload session's URL. */
  url: string;
  onBytes: (n: number) => void;
  /** MD5s of the parts object storage took, in order; undefined for the others. */
  md5s: Array<Buffer | undefined>;
  signal: AbortSignal;
}

/** Sends one part, to the registry or where it redirects; returns the session's next URL. */
async function sendChunk(c: ChunkRequest): Promise<string> {
  const { o, part: p, url, onBytes } = c;
  const res = await o.session.request("PATCH", url, {
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(p.size),
      "Content-Range": `${p.offset}-${p.offset + p.size - 1}`,
      "X-Redirect-Uploads": "1",
    },
    body: () => (req) => sendPart(o.path, p, req, onBytes),
    redirect: "manual",
    accept: [307],
    signal: c.signal,
  });
  res.discard();
  if (res.status !== 307) {
    c.md5s[p.n] = undefined;
    return nextURL(res.status, res.headers.get("docker-upload-location") ?? res.headers.get("location"), url);
  }
  // The bytes go to object storage; the next session URL comes separately (docs/protocol.md, "Uploading a blob").
  const storage = res.headers.get("location");
  const next = res.headers.get("docker-upload-location");
  if (!storage || !next) throw new RegistryError(307, "the registry redirected an upload without Location and Docker-Upload-Location");
  const md5 = createHash("md5");
  const target = new URL(storage, url).toString();
  const put = await bulkRequest(target, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(p.size), "User-Agent": USER_AGENT },
    body: partStream(o.path, p, onBytes, md5),
    signal: c.signal,
  }).catch((e: unknown) => {
    if ((e as Error).name === "AbortError") throw e;
    throw new TransportError(`PUT to object storage: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  });
  const text = put.status >= 400 ? await bodyText(put.body) : (discard(put.body), "");
  if (put.status >= 400) throw new RegistryError(put.status, `object storage refused a part: ${put.status} ${text.trim()}`);
  c.md5s[p.n] = md5.digest();
  return new URL(next, url).toString();
}

export async function uploadBlob(o: UploadOptions): Promise<void> {
  const { session, digest, size, signal } = o;
  const s = signal ? { signal } : {};
  let startURL = session.url("/blobs/uploads/");
  if (o.from) {
    const src = ModelName.parse(o.from);
    if (src.isValid() && src.repository() !== session.repository) startURL += `?${encodeQuery([["from", src.repository()], ["mount", digest]])}`;
  }
  const started = await session.request("POST", startURL, { accept: [201, 202], ...s });
  started.discard();
  if (started.status === 201) {
    o.onProgress(size, size);
    return;
  }
  let url = nextURL(started.status, started.headers.get("docker-upload-location") ?? started.headers.get("location"), session.fix(startURL));

  const parts = planParts(size);
  // The S3-style etag only means something to object storage; MD5s are worked out for parts that
  // went there (as they are sent) and, only then, for the others (read back at the end).
  const md5s: Array<Buffer | undefined> = [];
  let done = 0;
  for (const p of parts) {
    let sent = 0;
    await withRetries(
      async () => {
        sent = 0;
        // A part that sends nothing and hears nothing for the stall timeout is cut off.
        const watchdog = new StallWatchdog(`upload of part ${p.n + 1} of ${digest}`, signal);
        const onBytes = (n: number): void => {
          watchdog.moved();
          sent += n;
          o.onProgress(done + sent, size);
        };
        try {
          url = await sendChunk({ o, part: p, url, onBytes, md5s, signal: watchdog.signal });
        } catch (e) {
          throw watchdog.failure(e);
        } finally {
          watchdog.stop();
        }
      },
      { ...s, onRetry: () => o.onProgress(done, size) },
    );
    done += p.size;
  }

  let etag: string | undefined;
  if (md5s.some((m) => m !== undefined)) {
    const all = await Promise.all(parts.map(async (p, i) => md5s[i] ?? (await partMD5(o.path, p.offset, p.size))));
    etag = `${createHash("md5").update(Buffer.concat(all)).digest("hex")}-${parts.length}`;
  }
  const final = new URL(url);
  const params: Array<[string, string]> = [...final.searchParams.entries()].filter(([k]) => k !== "digest" && k !== "etag");
  params.push(["digest", digest]);
  if (etag) params.push(["etag", etag]);
  final.search = encodeQuery(params);
  const res = await session.request("PUT", final.toString(), { headers: { "Content-Type": "application/octet-stream", "Content-Length": "0" }, ...s });
  res.discard();
  o.onProgress(size, size);
}
