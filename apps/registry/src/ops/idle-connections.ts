// Closes connections on which the client has gone silent (REGISTRY_IDLE_TIMEOUT). The server's
// requestTimeout is off, because a large upload may rightly take hours; without this, an upload
// that sends its headers and then nothing would hold its socket for ever.
//
// `server.timeout` is Node's socket inactivity timer: every byte read or written restarts it, so a
// slow upload that keeps moving is never cut, however long it takes. Between requests Node
// replaces it by keepAliveTimeout (plus a second) and restores it when the next request begins,
// so idle keep-alive connections keep their own, longer, limit.
//
// When the timer fires, the connection is closed only if the silence is the client's: no request
// in progress, a request body that is not arriving although everything received has been taken,
// or a response the client does not read. A request whose body has all arrived while its answer
// is still being worked out (re-hashing a large upload at its final PUT, a garbage collection), or
// whose received bytes wait for a slow blob store, keeps its connection.

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
}

export function closeIdleConnections(server: Server, idleMs: number): void {
  if (idleMs <= 0) return;
  server.timeout = idleMs;
  const current = new WeakMap<Socket, Exchange>();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const exchange = { req, res };
    current.set(socket, exchange);
    res.once("close", () => {
      if (current.get(socket) === exchange) current.delete(socket);
    });
  });
  // With a listener here Node leaves the socket open on a timeout; this decides.
  server.on("timeout", (socket: Socket) => {
    const exchange = current.get(socket);
    if (exchange && waitingForServer(exchange, socket)) return;
    socket.destroy();
  });
}

/** Whether the connection is quiet because the server, not the client, has yet to act. */
function waitingForServer({ req, res }: Exchange, socket: Socket): boolean {
  // Response bytes the client has not taken: it stopped reading.
  if (socket.writableLength > 0) return false;
  // Body bytes received but not yet consumed: the handler is slow to take them.
  if (!req.complete) return req.readableLength > 0;
  // The whole request is here: the answer is being worked out, or streamed from a slow source.
  return !res.writableFinished;
}
