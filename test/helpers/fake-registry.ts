// A registry-shaped HTTP server for tests of how the daemon meets registries that misbehave (a
// hostile one, one that stalls): it records every request and lets the test answer each, with the
// pieces of a model (config, layer, manifest) and a registry's way of answering a ranged GET.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash, randomBytes } from "node:crypto";

export const MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json";

export interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
}

export interface Site {
  host: string;
  seen: Seen[];
  close(): Promise<void>;
}

/** A registry-shaped HTTP server that records every request; the handler answers it. */
export async function site(handle: (req: IncomingMessage, res: ServerResponse, url: URL) => unknown): Promise<Site> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url!, "http://site");
    seen.push({ method: req.method!, path: url.pathname, authorization: req.headers.authorization });
    Promise.resolve(handle(req, res, url)).catch((e: unknown) => res.destroy(e as Error));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Reads a request body to its end, so that answering early never cuts off a client still sending. */
export async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req);
}


export function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }).end(body);
}

export function challenge(res: ServerResponse, host: string, repository: string): void {
  res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://${host}/token",service="${host}",scope="repository:${repository}:push,pull"` }).end();
}

export interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
}

export function blobOf(bytes: Buffer): Blob {
  return { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, size: bytes.length, bytes };
}

export interface Model {
  config: Blob;
  layer: Blob;
  manifest: Buffer;
}

export function model(layerBytes: number): Model {
  const config = blobOf(Buffer.from(JSON.stringify({ model_format: "gguf", model_family: "llama", model_type: "260K", file_type: "F32", architecture: "amd64", os: "linux" })));
  const layer = blobOf(randomBytes(layerBytes));
  return { config, layer, manifest: manifestOf(config, [{ digest: layer.digest, size: layer.size }]) };
}

export function manifestOf(config: { digest: string; size: number }, layers: Array<{ digest: string; size: number }>): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: "application/vnd.docker.container.image.v1+json", ...config },
      layers: layers.map((l) => ({ mediaType: "application/vnd.ollama.image.model", ...l })),
    }),
  );
}

/** Answers a GET of a blob as a registry does: the Range asked for, or the whole blob. */
export function sendRange(req: IncomingMessage, res: ServerResponse, blob: Blob): number {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
  if (!m) {
    res.writeHead(200, { "Content-Length": blob.size }).end(blob.bytes);
    return blob.size;
  }
  const start = Number(m[1]);
  const end = Math.min(Number(m[2]), blob.size - 1);
  res.writeHead(206, { "Content-Length": end - start + 1, "Content-Range": `bytes ${start}-${end}/${blob.size}` }).end(blob.bytes.subarray(start, end + 1));
  return end - start + 1;
}

