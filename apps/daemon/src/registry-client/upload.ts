// Uploading one blob (§5.6): mount from another repository when the layer says where it came
// from, else a session with chunked PATCHes (Ollama's `Content-Range: a-b` form and
// X-Redirect-Uploads, following a 307 to object storage with a PUT), then the finalising PUT with
// digest and S3-style etag.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { ModelName } from "@corral/shared/name";
import { RegistryError, type RegistrySession } from "./session.ts";
import { planParts } from "./parts.ts";
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

function nextURL(res: Response, current: string): string {
  const loc = res.headers.get("docker-upload-location") ?? res.headers.get("location");
  if (!loc) throw new RegistryError(res.status, "the registry answered an upload request without a Location");
  return new URL(loc, current).toString();
}

function fileBody(path: string, start: number, size: number, md5: ReturnType<typeof createHash> | undefined, onBytes: (n: number) => void): () => RequestInit["body"] {
  return () => {
    const stream = size === 0 ? Readable.from([]) : createReadStream(path, { start, end: start + size - 1, highWaterMark: 1 << 20 });
    stream.on("data", (chunk: Buffer | string) => {
      const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      md5?.update(b);
      onBytes(b.length);
    });
    return Readable.toWeb(stream) as unknown as RequestInit["body"];
  };
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
  await started.body?.cancel();
  if (started.status === 201) {
    o.onProgress(size, size);
    return;
  }
  let url = nextURL(started, session.fix(startURL));

  const parts = planParts(size);
  const md5s: Buffer[] = [];
  let done = 0;
  for (const p of parts) {
    for (let attempt = 0; ; attempt++) {
      let sent = 0;
      const md5 = createHash("md5");
      try {
        const res = await session.request("PATCH", url, {
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Length": String(p.size),
            "Content-Range": `${p.offset}-${p.offset + p.size - 1}`,
            "X-Redirect-Uploads": "1",
          },
          body: fileBody(o.path, p.offset, p.size, md5, (n) => {
            sent += n;
            o.onProgress(done + sent, size);
          }),
          redirect: "manual",
          accept: [307],
          ...s,
        });
        await res.body?.cancel();
        if (res.status === 307) {
          // The bytes go to object storage; the next session URL comes separately (§5.6).
          const storage = res.headers.get("location");
          const next = res.headers.get("docker-upload-location");
          if (!storage || !next) throw new RegistryError(307, "the registry redirected an upload without Location and Docker-Upload-Location");
          sent = 0;
          const md5b = createHash("md5");
          const put = await fetch(new URL(storage, url), {
            method: "PUT",
            headers: { "Content-Type": "application/octet-stream", "Content-Length": String(p.size) },
            body: fileBody(o.path, p.offset, p.size, md5b, (n) => {
              sent += n;
              o.onProgress(done + sent, size);
            })(),
            duplex: "half",
            ...s,
          } as RequestInit);
          await put.body?.cancel();
          if (put.status >= 400) throw new RegistryError(put.status, `object storage refused a part: ${put.status}`);
          md5s.push(md5b.digest());
          url = new URL(next, url).toString();
        } else {
          md5s.push(md5.digest());
          url = nextURL(res, url);
        }
        done += p.size;
        break;
      } catch (e) {
        // 507: the registry's storage is full; retrying cannot help.
        if (signal?.aborted || attempt >= 5 || (e instanceof RegistryError && (e.status === 401 || e.status === 507))) throw e;
        o.onProgress(done, size);
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 32_000)));
      }
    }
  }

  const etag = `${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${parts.length}`;
  const final = new URL(url);
  const params: Array<[string, string]> = [...final.searchParams.entries()].filter(([k]) => k !== "digest" && k !== "etag");
  params.push(["digest", digest], ["etag", etag]);
  final.search = encodeQuery(params);
  const res = await session.request("PUT", final.toString(), { headers: { "Content-Type": "application/octet-stream", "Content-Length": "0" }, ...s });
  await res.body?.cancel();
  o.onProgress(size, size);
}
