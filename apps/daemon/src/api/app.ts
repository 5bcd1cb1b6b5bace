// The daemon's HTTP API, composed from one small app per resource. Reads like a table of contents.
import { Hono } from "hono";
import type { Store } from "../store/store.ts";
import { rootRoutes } from "./routes/root.ts";
import { blobRoutes } from "./routes/blobs.ts";
import { createRoutes } from "./routes/create.ts";
import { modelRoutes } from "./routes/models.ts";
import { generateRoutes } from "./routes/generate.ts";
import { embedRoutes } from "./routes/embed.ts";
import { psRoutes } from "./routes/ps.ts";
import { transferRoutes } from "./routes/transfer.ts";
import type { Signer } from "../registry-client/session.ts";
import { openaiRoutes } from "./openai/index.ts";
import type { Scheduler } from "../runner/scheduler.ts";
import { hostCheck } from "./host-check.ts";
import { originCheck } from "./origin-check.ts";
import { allowedOrigins, type VerifyPolicy } from "../config.ts";
import { errorMessage } from "./respond.ts";

export interface AppOptions {
  store: Store;
  scheduler: Scheduler;
  /** The daemon's registry identity, created on first use. */
  signer: () => Promise<Signer | undefined>;
  noPrune: boolean;
  /** CORRAL_VERIFY: what pulls do about publisher signatures (`warn` when absent). */
  verify?: VerifyPolicy;
  /** Whether the server listens on loopback only; then DNS-rebinding protection applies. */
  loopbackOnly: boolean;
  /** Origin patterns of the web pages allowed to call the API; the local defaults when absent. */
  origins?: readonly string[];
}

export function createApp(opts: AppOptions): Hono {
  const app = new Hono();
  // First, wherever the daemon listens: a page's request is refused before anything reads it.
  app.use("*", originCheck(opts.origins ?? allowedOrigins(undefined)));
  if (opts.loopbackOnly) app.use("*", hostCheck());
  app.route("/", rootRoutes());
  app.route("/", blobRoutes(opts.store));
  app.route("/", createRoutes(opts.store));
  app.route("/", modelRoutes(opts.store));
  const inference = { store: opts.store, scheduler: opts.scheduler };
  app.route("/", generateRoutes(inference));
  app.route("/", embedRoutes(inference));
  app.route("/", psRoutes(opts.scheduler));
  app.route("/", transferRoutes({ store: opts.store, signer: opts.signer, noPrune: opts.noPrune, verify: opts.verify ?? "warn" }));
  app.route("/", openaiRoutes(inference));
  app.notFound((c) => c.text("404 page not found", 404));
  app.onError((e, c) => {
    console.error(`${c.req.method} ${c.req.path}: ${e.stack ?? e.message}`);
    return c.json({ error: errorMessage(e) }, 500);
  });
  return app;
}
