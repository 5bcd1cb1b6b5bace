// The registry's HTTP application, composed from one small app per resource.

import { Hono } from "hono";
import { RegistryError, errorResponse } from "./errors.ts";
import { backendFailure } from "./backend-errors.ts";
import type { AppEnv } from "./http/env.ts";
import type { Registry } from "./registry.ts";
import { adminRoutes } from "./routes/admin.ts";
import { base } from "./routes/base.ts";
import { blobRoutes } from "./routes/blobs.ts";
import { catalog } from "./routes/catalog.ts";
import { dataRoutes } from "./routes/data.ts";
import { manifestRoutes } from "./routes/manifests.ts";
import { signatureRoutes } from "./routes/signatures.ts";
import { tagsList } from "./routes/tags.ts";
import { token } from "./routes/token.ts";
import { uploadRoutes } from "./routes/uploads.ts";
import { web } from "./routes/web.ts";
import { recordPushes } from "./routes/web-pushes.ts";
import { opsRoutes, type OpsOptions } from "./ops/health.ts";
import { noteRoute, requestIdOf } from "./ops/requests.ts";

export interface AppOptions {
  /** Enables /admin with this bearer token. */
  adminToken?: string;
  log?: (line: string, fields?: Record<string, unknown>) => void;
  /** Metrics for /metrics and the shutdown state for /readyz; /healthz and /readyz exist regardless. */
  ops?: OpsOptions;
}

function toRegistryError(err: unknown): RegistryError | undefined {
  // AdminErrors too: their codes carry their statuses.
  if (err instanceof RegistryError) return err;
  // A client that hangs up mid-body is not a server error.
  const code = (err as { code?: string }).code;
  if (code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || (err as Error).name === "AbortError") {
    return new RegistryError("BLOB_UPLOAD_INVALID", "the request body ended early");
  }
  return undefined;
}

export function createApp(registry: Registry, opts: AppOptions = {}): Hono<AppEnv> {
  // Not strict: `/v2/` and Ollama's `…/blobs/uploads/` have trailing slashes.
  const app = new Hono<AppEnv>({ strict: false });
  app.use("*", async (c, next) => {
    c.set("registry", registry);
    try {
      await next();
    } finally {
      noteRoute(c);
    }
  });
  app.onError((err, c) => {
    const known = backendFailure(err, `${c.req.method} ${new URL(c.req.url).pathname}`) ?? toRegistryError(err);
    if (known) return errorResponse(known, c.req.method === "HEAD");
    opts.log?.(`${c.req.method} ${new URL(c.req.url).pathname}: ${(err as Error).stack ?? String(err)}`, { id: requestIdOf(c.env?.incoming) });
    return errorResponse(new RegistryError("UNKNOWN", "internal error"), c.req.method === "HEAD");
  });
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    if (path.startsWith("/v2/")) {
      return errorResponse(new RegistryError("NAME_INVALID", `no route for ${path.slice(0, 200)}: repository names have exactly two parts, namespace/model`), c.req.method === "HEAD");
    }
    return errorResponse(new RegistryError("NOT_FOUND", "not found"), c.req.method === "HEAD");
  });

  app.route("/", opsRoutes(registry, opts.ops));
  app.route("/v2", base);
  app.route("/v2/token", token);
  app.route("/v2/_catalog", catalog);
  app.use("/v2/:ns/:model/manifests/:ref", recordPushes);
  app.route("/v2/:ns/:model/manifests", manifestRoutes);
  app.route("/v2/:ns/:model/blobs/uploads", uploadRoutes);
  app.route("/v2/:ns/:model/blobs", blobRoutes);
  app.route("/v2/:ns/:model/tags", tagsList);
  app.route("/v2/:ns/:model/signatures", signatureRoutes);
  app.route("/data", dataRoutes);
  if (opts.adminToken) app.route("/admin", adminRoutes(opts.adminToken));
  // Anything else under /v2/ and /data/ is the API's, never a catalog page: clients get OCI JSON.
  app.all("/v2/*", (c) => c.notFound());
  app.all("/data/*", (c) => c.notFound());
  app.route("/", web);
  return app;
}
