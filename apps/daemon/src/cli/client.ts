// The CLI's HTTP client of the daemon API. Every CLI command is one of these calls plus rendering.
import { createReadStream } from "node:fs";
import { Readable, Transform } from "node:stream";
import { clientBaseURL, loadConfig } from "../config.ts";

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

async function errorFrom(res: Response): Promise<APIError> {
  const text = await res.text().catch(() => "");
  let message = text.trim() || res.statusText;
  try {
    const v = JSON.parse(text) as { error?: unknown };
    if (typeof v.error === "string") message = v.error;
  } catch {
    // a plain-text body is the message itself
  }
  return new APIError(res.status, message);
}

export class Client {
  constructor(readonly baseURL: string = clientBaseURL(loadConfig().host)) {}

  private async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(this.baseURL + path, init);
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause;
      if (cause?.code === "ECONNREFUSED" || cause?.code === "ENOTFOUND" || cause?.code === "EHOSTUNREACH") throw new ConnectionError(this.baseURL);
      throw e;
    }
  }

  /** HEAD /, as every command does first, so "server not running" is the message a user sees. */
  async heartbeat(): Promise<void> {
    const res = await this.fetch("/", { method: "HEAD" });
    if (!res.ok) throw new APIError(res.status, `corral server at ${this.baseURL} answered ${res.status}`);
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    }
    const res = await this.fetch(path, init);
    if (!res.ok) throw await errorFrom(res);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** POSTs and yields each NDJSON line; an `{"error"}` line throws. */
  async *stream<T extends object>(path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
    const res = await this.fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    if (!res.ok) throw await errorFrom(res);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const v = JSON.parse(line) as T & { error?: string };
        if (typeof v.error === "string") throw new APIError(res.status, v.error);
        yield v as T;
      }
    }
    const rest = buf.trim();
    if (rest) {
      const v = JSON.parse(rest) as T & { error?: string };
      if (typeof v.error === "string") throw new APIError(res.status, v.error);
      yield v as T;
    }
  }

  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.fetch(`/api/blobs/${digest}`, { method: "HEAD" });
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw new APIError(res.status, `checking blob ${digest}: ${res.status} ${res.statusText}`);
  }

  /** Streams a local file to /api/blobs/<digest>, reporting bytes sent. */
  async uploadBlob(digest: string, path: string, onBytes?: (n: number) => void): Promise<void> {
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        onBytes?.(chunk.length);
        cb(null, chunk);
      },
    });
    const body = Readable.toWeb(createReadStream(path, { highWaterMark: 1 << 20 }).pipe(counter));
    const res = await this.fetch(`/api/blobs/${digest}`, {
      method: "POST",
      body: body as unknown as RequestInit["body"],
      duplex: "half",
    } as RequestInit);
    if (!res.ok) throw await errorFrom(res);
  }
}
