// A loopback HTTP proxy in front of a registry, for fault tests: it records every request, can
// slow responses down, and can corrupt the bytes of a chosen blob.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";

export interface ProxyLog {
  method: string;
  url: string;
  range?: string;
}

export interface ProxyOptions {
  /** Milliseconds to wait before forwarding each response chunk of a blob GET. */
  delayPerChunkMs?: number;
  /** Largest chunk forwarded at once (so delays apply at a fine grain). */
  chunkBytes?: number;
  /** Flip one byte of the responses for blob GETs of this digest. */
  corruptDigest?: string;
  /** Cut the connection of blob GETs of this digest once this many bytes of the body went through. */
  cutAfter?: { digest: string; bytes: number };
  /** Blob GETs wait for this before their answer is forwarded. */
  holdBlobs?: Promise<unknown>;
}

export interface Proxy {
  host: string;
  url: string;
  log: ProxyLog[];
  options: ProxyOptions;
  stop(): Promise<void>;
}

export async function startProxy(target: string, options: ProxyOptions = {}): Promise<Proxy> {
  const t = new URL(target);
  const log: ProxyLog[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const entry: ProxyLog = { method: req.method ?? "GET", url: req.url ?? "/" };
    if (req.headers.range) entry.range = req.headers.range;
    log.push(entry);
    const upstream = httpRequest(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } },
      async (up) => {
        const isBlob = req.method === "GET" && /\/blobs\/sha256:/.test(req.url ?? "");
        if (isBlob && options.holdBlobs) await options.holdBlobs;
        const headers = { ...up.headers };
        res.writeHead(up.statusCode ?? 502, headers);
        let first = true;
        let sent = 0;
        const cut = isBlob && options.cutAfter && req.url?.includes(options.cutAfter.digest) ? options.cutAfter.bytes : undefined;
        for await (const c of up) {
          let chunk = c as Buffer;
          if (cut !== undefined && sent + chunk.length >= cut) {
            res.write(chunk.subarray(0, cut - sent));
            up.destroy();
            res.destroy();
            return;
          }
          sent += chunk.length;
          if (isBlob && options.corruptDigest && req.url?.includes(options.corruptDigest) && first && chunk.length > 0) {
            chunk = Buffer.from(chunk);
            chunk[0] = chunk[0]! ^ 0xff;
          }
          first = false;
          const size = isBlob && options.chunkBytes ? options.chunkBytes : chunk.length;
          for (let i = 0; i < chunk.length; i += size) {
            if (isBlob && options.delayPerChunkMs) await new Promise((r) => setTimeout(r, options.delayPerChunkMs));
            if (!res.write(chunk.subarray(i, i + size))) await new Promise((r) => res.once("drain", r));
          }
        }
        res.end();
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    log,
    options,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
