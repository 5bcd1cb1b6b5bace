// The daemon's HTTP server, with connection timeouts that suit its clients.
//
// Pooled clients keep idle connections and send their next request on one (Go's http.Transport
// keeps them 90 s; undici, under fetch and ollama-js, as long as the server's Keep-Alive header
// says). With Node's 5 s keep-alive the daemon closes connections such a client is about to reuse,
// and a POST fails with "other side closed" or EOF. So idle connections live longer than those pools.
//
// Node's default requestTimeout (300 s for the whole request) would cut an upload to /api/blobs
// that takes longer than that, however steadily its bytes arrive. It is replaced by a limit on how
// long a request body may stop arriving.
import { serve } from "@hono/node-server";
import type { IncomingMessage, Server, ServerResponse } from "node:http";

type FetchCallback = Parameters<typeof serve>[0]["fetch"];

/** How long an idle connection stays open for the client's next request. */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000;

/** How long a request body may stop arriving before the daemon gives up on it. */
export const BODY_IDLE_TIMEOUT_MS = 120_000;

export interface HTTPServerOptions {
  hostname: string;
  port: number;
  bodyIdleMs?: number;
}

/** Creates the server and starts listening (wait for its "listening" or "error" event). */
export function createHTTPServer(fetch: FetchCallback, opts: HTTPServerOptions): Server {
  const server = serve({
    fetch,
    hostname: opts.hostname,
    port: opts.port,
    serverOptions: {
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // Kept above the keep-alive time: Node long counted a kept connection's idle wait against its
      // next request's headers, and that request would be cut.
      headersTimeout: KEEP_ALIVE_TIMEOUT_MS + 5_000,
      requestTimeout: 0,
    },
  }) as Server;
  const idleMs = opts.bodyIdleMs ?? BODY_IDLE_TIMEOUT_MS;
  server.on("request", (req: IncomingMessage, res: ServerResponse) => cutWhenBodyStops(req, res, idleMs));
  return server;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/**
 * Closes the connection of a request whose body stops arriving for `idleMs`. Only the client's
 * silence counts: once the body has all arrived, or while received bytes wait for a handler that
 * is slow to take them (a slow disk under a blob upload), the connection stays.
 */
function cutWhenBodyStops(req: IncomingMessage, res: ServerResponse, idleMs: number): void {
  if (!hasBody(req)) return;
  const waitingForClient = () => !req.complete && req.readableLength === 0 && req.readableFlowing !== false;
  // A listener on the response keeps Node from closing the socket on its own at each timeout.
  res.setTimeout(idleMs, () => {
    if (!waitingForClient()) return;
    // Timers run before the poll for input: when the daemon itself was busy, bytes may be waiting
    // unread. Decide after one more poll, from whether any came in.
    const bytesRead = req.socket.bytesRead;
    setImmediate(() => {
      if (waitingForClient() && req.socket.bytesRead === bytesRead) req.socket.destroy();
    });
  });
}
