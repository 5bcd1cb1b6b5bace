// `corral-registry serve`: opens the registry, listens, and with the embedded database records where
// it listens and its admin token in the data directory, so the admin CLI can reach it while it holds
// that database. Requests are observed (logs, metrics, request ids) around the application, at the
// Node level, and shutdown drains them first.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { parseAddr, type Config } from "./config.ts";
import type { OpenOptions, Registry } from "./registry.ts";
import { createLogger, errorFields, type Logger } from "./ops/logger.ts";
import { Metrics } from "./ops/metrics.ts";
import { RequestTracker, type RequestListener } from "./ops/requests.ts";
import { drain } from "./ops/shutdown.ts";
import { openForServing, type StartupTimes } from "./ops/startup.ts";
import { closeIdleConnections } from "./ops/idle-connections.ts";
import { startUploadSweeper } from "./services/uploads.ts";
import { onHashThreadFailure } from "./services/upload-hash.ts";
import { describeURLs, isWildcardAddress, publicURLs } from "./http/public-urls.ts";
import { adminToken, readServerInfo, serverInfoFile } from "./ops/server-info.ts";

export interface RunningServer {
  url: string;
  registry: Registry;
  metrics: Metrics;
  logger: Logger;
  /** Stops accepting, lets requests in flight finish (up to REGISTRY_SHUTDOWN_TIMEOUT), closes the registry. */
  close(): Promise<void>;
}

export interface StartOptions extends OpenOptions {
  /** Receives each log line (a JSON object) instead of stderr; tests pass a no-op. */
  log?: (line: string) => void;
  logger?: Logger;
}

function listenError(e: NodeJS.ErrnoException, addr: string): Error {
  if (e.code === "EADDRINUSE") return new Error(`REGISTRY_ADDR: ${addr} is already in use`);
  if (e.code === "EACCES") return new Error(`REGISTRY_ADDR: not allowed to listen on ${addr} (ports below 1024 need privileges)`);
  if (e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND" || e.code === "EAI_AGAIN") {
    return new Error(`REGISTRY_ADDR: ${addr} is not an address of this machine (${e.code})`);
  }
  return new Error(`REGISTRY_ADDR: cannot listen on ${addr}: ${e.message}`);
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel, opts.log);
  const { host, port } = parseAddr(config.addr);
  // Only the embedded database ties the registry to its data directory; on PostgreSQL it writes
  // nothing locally, so replicas (and read-only root filesystems) need no volume.
  const embedded = !config.databaseURL;
  if (embedded) mkdirSync(config.dataDir, { recursive: true });
  const times: StartupTimes = {};
  // The application (routes, pages and their libraries) loads while the database opens: both wait
  // on files at times, and each fills the other's waits.
  const [opened, loaded] = await Promise.allSettled([openForServing(config, opts, times), import("./app.ts")]);
  if (opened.status === "rejected") throw opened.reason;
  const registry = opened.value;
  registry.mirror.log = logger;
  if (loaded.status === "rejected") {
    await registry.close().catch(() => {});
    throw loaded.reason;
  }
  const { createApp } = loaded.value;
  const metrics = new Metrics();
  const tracker = new RequestTracker(metrics, logger);
  const app = createApp(registry, {
    adminToken: embedded ? adminToken(config, true) : config.adminToken,
    log: (line, fields) => logger.error(line, fields),
    ops: { metrics, draining: () => tracker.isDraining },
  });
  const listener = tracker.wrap(getRequestListener(app.fetch, { hostname: host }) as RequestListener);
  const server = createServer(listener);
  server.on("connection", tracker.trackConnection);
  // Large uploads can take longer than Node's default request timeout; a client that stops sending
  // (or reading) is cut by the inactivity timeout instead, which a moving upload never reaches.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  closeIdleConnections(server, config.idleTimeoutSeconds * 1000);
  let address: AddressInfo;
  try {
    address = await new Promise<AddressInfo>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve(server.address() as AddressInfo);
      });
    });
  } catch (e) {
    await registry.close().catch(() => {});
    throw listenError(e as NodeJS.ErrnoException, config.addr);
  }
  server.on("error", (e) => logger.error("server error", errorFields(e)));
  const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${hostPart}:${address.port}`;
  // Only now is the port known (REGISTRY_ADDR may say 0), and with it the names the server answers to.
  registry.urls = publicURLs(config, address);
  if (embedded) writeFileSync(serverInfoFile(config.dataDir), JSON.stringify({ url, pid: process.pid }) + "\n");
  const unnamed = !config.publicURL && isWildcardAddress(address.address)
    ? "; REGISTRY_URL is unset, so signed requests are accepted only for this machine's addresses and name: set REGISTRY_URL to the URL clients use"
    : "";
  // The URL is followed by a space: scripts find it with /listening on (http:\/\/\S+)/.
  logger.info(`corral-registry listening on ${url} (database: ${registry.dbKind}, blobs: ${registry.store.kind}); ${describeURLs(registry.urls)}${unnamed}`, {
    url,
    database: registry.dbKind,
    blobs: registry.store.kind,
    admin: Boolean(embedded || config.adminToken),
    public_url: registry.urls.primary,
    accepted_urls: registry.urls.accepted,
    // Where start-up went: each step, and the time since the process started (loading code included).
    startup_ms: { ...times, since_process_start: Math.round(performance.now()) },
  });
  const sweeper = startUploadSweeper(registry, logger);
  const unwatchHashes = onHashThreadFailure((e) =>
    logger.warn("the upload hash thread failed: sessions it was hashing are read back and hashed at their final PUT", errorFields(e)),
  );
  let closing: Promise<void> | undefined;
  return {
    url,
    registry,
    metrics,
    logger,
    close() {
      closing ??= (async () => {
        const timeoutMs = config.shutdownTimeoutSeconds * 1000;
        logger.info("shutting down: no new connections; waiting for requests in flight", { in_flight: tracker.inFlight, timeout_s: config.shutdownTimeoutSeconds });
        const result = await drain(server, tracker, timeoutMs);
        if (result.abandoned > 0) {
          logger.warn("shutdown timeout: requests still running were cut off (interrupted uploads resume from their last accepted chunk)", { abandoned: result.abandoned });
        }
        if (embedded && readServerInfo(config.dataDir)?.pid === process.pid) rmSync(serverInfoFile(config.dataDir), { force: true });
        await sweeper.stop();
        unwatchHashes();
        await registry.close();
        logger.info("stopped", { drain_ms: result.ms });
        await logger.flush();
      })();
      return closing;
    },
  };
}
