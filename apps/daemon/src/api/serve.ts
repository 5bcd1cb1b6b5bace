// `corral serve`: opens the store, prunes what no model needs, and listens.
import type { DaemonConfig } from "../config.ts";
import { Store } from "../store/store.ts";
import { createApp } from "./app.ts";
import { createHTTPServer } from "./http-server.ts";
import { unusableOrigins } from "./origin-check.ts";
import { VERSION } from "../version.ts";
import { Scheduler, schedulerOptions } from "../runner/scheduler.ts";
import { loadOrCreateIdentity, signerFor } from "../identity.ts";

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

export async function startServer(config: DaemonConfig): Promise<RunningServer> {
  const store = new Store(config.modelsDir);
  await store.init();
  if (!config.noPrune) {
    const { removed } = await store.prune();
    if (removed.length) console.error(`pruned ${removed.length} unused blob file(s)`);
  }
  const identity = signerFor(await loadOrCreateIdentity(config.homeDir));
  const scheduler = new Scheduler(schedulerOptions(config));
  // Read now, so that a CORRAL_GPU naming no backend stops serve before it listens; the engine
  // itself, and with it the backend, loads at the first generation (runner/llama.ts).
  if (config.gpu !== "auto") console.error(`models run on ${{ cpu: "the CPU", cuda: "CUDA", vulkan: "Vulkan" }[config.gpu]} (CORRAL_GPU=${config.gpu})`);
  // Read now too: a CORRAL_VERIFY naming no policy stops serve with one line before it listens.
  const verify = config.verify;
  if (verify !== "warn") console.error(`publisher signatures: ${verify === "off" ? "not checked" : "required"} on pull (CORRAL_VERIFY=${verify})`);
  for (const o of unusableOrigins(config.origins)) {
    console.error(`origin ${JSON.stringify(o)} in CORRAL_ORIGINS (or OLLAMA_ORIGINS) can never match: an origin begins with its scheme, as in http://${o}`);
  }
  const app = createApp({
    store,
    scheduler,
    signer: async () => identity,
    noPrune: config.noPrune,
    verify,
    loopbackOnly: isLoopback(config.host.host),
    origins: config.origins,
  });
  const { host, port } = config.host;
  const server = createHTTPServer(app.fetch, { hostname: host, port });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(e.code === "EADDRINUSE" ? new Error(`listen tcp ${host}:${port}: address already in use (set CORRAL_HOST to use another address)`) : e),
    );
  });
  const addr = server.address();
  const actualPort = typeof addr === "object" && addr ? addr.port : port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${actualPort}`;
  console.error(`Corral ${VERSION} listening on ${url} (models in ${config.modelsDir})`);
  return {
    url,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await scheduler.close();
    },
  };
}
