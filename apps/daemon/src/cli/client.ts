// The CLI's HTTP client of the daemon API. Every CLI command is one of these calls plus rendering.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { request as httpRequest, STATUS_CODES, type IncomingMessage } from "node:http";
import { Readable, Transform } from "node:stream";
import { clientBaseURL, daemonConfig } from "../config.ts";
import { ndjsonLines } from "../ndjson.ts";

export class APIError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "APIError";
  }
}

export class ConnectionError extends Error {
  constructor(readonly url: string) {
    super(`could not connect to corral server at ${url}, run 'corral serve' to start it`);
    this.name = "ConnectionError";
  }
}

/**
 * One request over node:http. The CLI does not use fetch: Node's fetch (undici) compiles its HTTP
 * parser to WebAssembly on first use, which costs a short command more than all its own work.
 */
interface Reply {
  status: number;
  body: IncomingMessage;
  text(): Promise<string>;
}

async function readText(body: IncomingMessage): Promise<string> {
  body.setEncoding("utf8");
  let text = "";
  for await (const chunk of body) text += chunk as string;
  return text;
}

async function errorFrom(res: Reply): Promise<APIError> {
  const text = await res.text().catch(() => "");
  let message = text.trim() || STATUS_CODES[res.status] || String(res.status);
  try {
    const v = JSON.parse(text) as { error?: unknown };
    if (typeof v.error === "string") message = v.error;
  } catch {
    // a plain-text body is the message itself
  }
  return new APIError(res.status, message);
}

interface SendOptions {
  headers?: Record<string, string>;
  /** A string body, or a stream piped into the request. */
  body?: string | Readable;
  signal?: AbortSignal;
}

/** The body's text chunks; a cancelled answer ends as an AbortError, whatever the socket reports when it is cut. */
async function* chunksUntilAbort(body: IncomingMessage, signal: AbortSignal | undefined): AsyncGenerator<string> {
  try {
    // Left open when the reader stops early, as the daemon ends the answer itself.
    for await (const chunk of body.iterator({ destroyOnReturn: false })) yield chunk as string;
  } catch (e) {
    if (signal?.aborted) {
      throw signal.reason instanceof Error && signal.reason.name === "AbortError" ? signal.reason : new DOMException("This operation was aborted", "AbortError");
    }
    throw e;
  }
}

export class Client {
  constructor(readonly baseURL: string = clientBaseURL(daemonConfig().host)) {}

  private async send(method: string, path: string, o: SendOptions = {}): Promise<Reply> {
    const url = new URL(this.baseURL + path);
    const request = url.protocol === "https:" ? (await import("node:https")).request : httpRequest;
    const headers: Record<string, string | number> = { ...o.headers };
    if (typeof o.body === "string") headers["Content-Length"] = Buffer.byteLength(o.body);
    return new Promise<Reply>((resolve, reject) => {
      const req = request(url, { method, headers, ...(o.signal ? { signal: o.signal } : {}) }, (res) => {
        resolve({ status: res.statusCode ?? 0, body: res, text: () => readText(res) });
      });
      req.on("error", (e: NodeJS.ErrnoException) => {
        if (e.code === "ECONNREFUSED" || e.code === "ENOTFOUND" || e.code === "EHOSTUNREACH") reject(new ConnectionError(this.baseURL));
        else reject(e);
      });
      if (o.body instanceof Readable) {
        o.body.on("error", (e) => req.destroy(e));
        o.body.pipe(req);
      } else {
        req.end(o.body);
      }
    });
  }

  /** HEAD /, as every command does first, so "server not running" is the message a user sees. */
  async heartbeat(): Promise<void> {
    const res = await this.send("HEAD", "/");
    res.body.resume();
    if (res.status < 200 || res.status > 299) throw new APIError(res.status, `corral server at ${this.baseURL} answered ${res.status}`);
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await this.send(method, path, { headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    if (res.status < 200 || res.status > 299) throw await errorFrom(res);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** POSTs and yields each NDJSON line; an `{"error"}` line throws. */
  async *stream<T extends object>(path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
    const res = await this.send("POST", path, {
      headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    if (res.status < 200 || res.status > 299) throw await errorFrom(res);
    res.body.setEncoding("utf8");
    for await (const line of ndjsonLines(chunksUntilAbort(res.body, signal))) {
      const v = JSON.parse(line) as T & { error?: string };
      if (typeof v.error === "string") throw new APIError(res.status, v.error);
      yield v as T;
    }
  }

  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.send("HEAD", `/api/blobs/${digest}`);
    res.body.resume();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw new APIError(res.status, `checking blob ${digest}: ${res.status} ${STATUS_CODES[res.status] ?? ""}`.trimEnd());
  }

  /** Streams a local file to /api/blobs/<digest>, reporting bytes sent. */
  async uploadBlob(digest: string, path: string, onBytes?: (n: number) => void): Promise<void> {
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        onBytes?.(chunk.length);
        cb(null, chunk);
      },
    });
    const { size } = await stat(path);
    const body = createReadStream(path, { highWaterMark: 1 << 20 }).pipe(counter);
    const res = await this.send("POST", `/api/blobs/${digest}`, { headers: { "Content-Length": String(size) }, body });
    if (res.status < 200 || res.status > 299) throw await errorFrom(res);
    res.body.resume();
  }
}
