// GET /healthz: the process answers. GET /readyz: the database and the blob store answer too, and
// the process is not shutting down; 503 otherwise, so a load balancer stops sending it requests.
// GET /metrics: the Prometheus exposition.

import { Hono } from "hono";
import { sql } from "drizzle-orm";
import type { AppEnv } from "../http/env.ts";
import type { Registry } from "../registry.ts";
import { METRICS_CONTENT_TYPE, type Metrics } from "./metrics.ts";
import { reason } from "./startup.ts";

const CHECK_TIMEOUT_MS = 2_000;
/** Probes from several sources within this window share one check of the dependencies. */
const CHECK_REUSE_MS = 1_000;
/** A digest no blob has: asking the store for it exercises the store without reading data. */
const PROBE_DIGEST = `sha256:${"0".repeat(64)}`;

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

export interface Readiness {
  ready: boolean;
  draining: boolean;
  checks: { database: CheckResult; blobs: CheckResult };
}

async function timed(what: () => Promise<unknown>): Promise<CheckResult> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      what(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS}ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, ms: Math.round(performance.now() - start) };
  } catch (e) {
    return { ok: false, ms: Math.round(performance.now() - start), error: reason(e) };
  } finally {
    clearTimeout(timer);
  }
}

export interface OpsOptions {
  metrics?: Metrics;
  /** True once shutdown has begun. */
  draining?: () => boolean;
}

/** Checks the registry's dependencies, sharing one check among callers that arrive close together. */
export class ReadinessChecker {
  private last: { at: number; result: Promise<Readiness["checks"]> } | undefined;

  constructor(private readonly registry: Registry) {}

  check(): Promise<Readiness["checks"]> {
    const now = Date.now();
    if (this.last && now - this.last.at < CHECK_REUSE_MS) return this.last.result;
    const reg = this.registry;
    const result = Promise.all([timed(() => reg.db.execute(sql`select 1`)), timed(() => reg.store.stat(PROBE_DIGEST))]).then(([database, blobs]) => ({ database, blobs }));
    this.last = { at: now, result };
    return result;
  }
}

export function opsRoutes(registry: Registry, opts: OpsOptions = {}): Hono<AppEnv> {
  const readiness = new ReadinessChecker(registry);
  const app = new Hono<AppEnv>();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const draining = opts.draining?.() ?? false;
    const checks = await readiness.check();
    const ready = !draining && checks.database.ok && checks.blobs.ok;
    const body: Readiness = { ready, draining, checks };
    return c.json(body, ready ? 200 : 503, { "Cache-Control": "no-store" });
  });
  const metrics = opts.metrics;
  if (metrics) app.get("/metrics", (c) => c.body(metrics.render(), 200, { "Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store" }));
  return app;
}
