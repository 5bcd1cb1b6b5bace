// Per-request observation at the Node HTTP level, where every response ends (including the blob
// streams that bypass Hono's Response): a request id (the client's X-Request-Id when it is sane,
// else a new one) echoed in the response, one JSON log line and one metrics sample per request, and
// the in-flight count that graceful shutdown waits on. The application contributes the route pattern
// and the token's subject through `noteRoute`.
//
// What is logged is chosen so that no credential can appear: the path without its query (signed
// blob URLs and token requests carry signatures there), no headers besides the user agent.

import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Context } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "../http/env.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

const INFO = Symbol("corral.request");
const MARKS = Symbol("corral.socketMarks");

interface RequestInfo {
  id: string;
  route: string | undefined;
  subject: string | undefined;
}

interface SocketMarks {
  read: number;
  written: number;
  /** Requests on this connection not yet finished. */
  active: number;
}

type Tagged<T> = T & { [INFO]?: RequestInfo; [MARKS]?: SocketMarks };

const REQUEST_ID_RE = /^[A-Za-z0-9._:\-]{1,128}$/;
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/** The id of the request behind a Hono context, for log lines written while handling it. */
export function requestIdOf(incoming: unknown): string | undefined {
  return (incoming as Tagged<IncomingMessage> | undefined)?.[INFO]?.id;
}

/** Called by the application's first middleware after the handler ran: which route pattern answered, for whom. */
export function noteRoute(c: Context<AppEnv>): void {
  const info = (c.env?.incoming as Tagged<IncomingMessage> | undefined)?.[INFO];
  if (info) {
    info.route = routePath(c);
    info.subject = c.get("subject");
  }
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export class RequestTracker {
  private inFlightCount = 0;
  private draining = false;
  readonly sockets = new Set<Socket>();

  constructor(
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  get inFlight(): number {
    return this.inFlightCount;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** From now on responses ask clients to close their connections. */
  startDraining(): void {
    this.draining = true;
  }

  /** Keeps the set of open connections, for shutdown. */
  trackConnection = (socket: Socket): void => {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  };

  /** Whether a connection has a request in progress. */
  busy(socket: Socket): boolean {
    return ((socket as Tagged<Socket>)[MARKS]?.active ?? 0) > 0;
  }

  /** Wraps the application's listener. */
  wrap(handler: RequestListener): RequestListener {
    return (req, res) => {
      const start = performance.now();
      const given = req.headers["x-request-id"];
      const id = typeof given === "string" && REQUEST_ID_RE.test(given) ? given : randomUUID();
      const info: RequestInfo = { id, route: undefined, subject: undefined };
      (req as Tagged<IncomingMessage>)[INFO] = info;
      res.setHeader("X-Request-Id", id);
      if (this.draining) res.setHeader("Connection", "close");
      const socket = req.socket as Tagged<Socket>;
      const marks = (socket[MARKS] ??= { read: 0, written: 0, active: 0 });
      marks.active++;
      const method = req.method ?? "GET";
      const url = req.url ?? "/";
      const upload = method !== "GET" && method !== "HEAD" && url.includes("/blobs/uploads");
      this.inFlightCount++;
      this.metrics.inFlight++;
      if (upload) this.metrics.uploadsInFlight++;
      res.once("close", () => {
        marks.active--;
        this.inFlightCount--;
        this.metrics.inFlight--;
        if (upload) this.metrics.uploadsInFlight--;
        // Bytes on the connection since the previous request on it ended: headers and body.
        const bytesIn = socket.bytesRead - marks.read;
        const bytesOut = socket.bytesWritten - marks.written;
        marks.read = socket.bytesRead;
        marks.written = socket.bytesWritten;
        const seconds = (performance.now() - start) / 1000;
        const finished = res.writableFinished;
        const status = res.headersSent || finished ? res.statusCode : 499;
        const route = info.route === undefined || info.route === "*" || info.route === "" ? "unmatched" : info.route;
        this.metrics.observe({ method, route, status, seconds, bytesIn, bytesOut });
        const q = url.indexOf("?");
        const path = (q < 0 ? url : url.slice(0, q)).slice(0, 512);
        const level = status >= 500 ? "error" : QUIET_PATHS.has(path) && status < 400 ? "debug" : "info";
        if (!this.logger.enabled(level)) return;
        const agent = req.headers["user-agent"];
        this.logger[level]("request", {
          id,
          method,
          path,
          route,
          status,
          duration_ms: Math.round(seconds * 10_000) / 10,
          bytes_in: bytesIn,
          bytes_out: bytesOut,
          remote: socket.remoteAddress,
          ...(info.subject ? { subject: info.subject } : {}),
          ...(agent ? { agent: agent.slice(0, 200) } : {}),
          ...(finished ? {} : { aborted: true }),
        });
      });
      handler(req, res);
    };
  }
}
