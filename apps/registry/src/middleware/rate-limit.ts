// Charging the token buckets (auth/rate-limit.ts) for the endpoints that verify signatures and
// write nonces: GET /v2/token and the login-link request. Too many requests are answered 429 with
// the seconds to wait in `Retry-After`.
//
// middleware/ holds Hono middleware and the per-request helpers they are built from; the bucket
// state itself knows nothing of HTTP and stays in auth/.

import type { Context, MiddlewareHandler } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";

function tooMany(what: string, retryAfter: number): RegistryError {
  return new RegistryError("TOOMANYREQUESTS", `too many token requests from this ${what}; try again in ${retryAfter}s`).withHeaders({ "Retry-After": String(retryAfter) });
}

/** The peer address; behind a proxy that is the proxy, which then shares one budget (per replica). */
export function clientAddress(c: Context<AppEnv>): string {
  return c.env?.incoming?.socket?.remoteAddress ?? "unknown";
}

/** Middleware: charges the client's address before any signature is checked. */
export const limitByAddress: MiddlewareHandler<AppEnv> = async (c, next) => {
  const wait = c.var.registry.tokenBuckets.take(`ip:${clientAddress(c)}`);
  if (wait) throw tooMany("address", wait);
  await next();
};

/**
 * Charges a signing key. Called only once its signature has verified, so nobody can spend another
 * person's budget by sending garbage signed "by" their public key.
 */
export function limitByKey(c: Context<AppEnv>, fingerprint: string): void {
  const wait = c.var.registry.tokenBuckets.take(`key:${fingerprint}`);
  if (wait) throw tooMany("key", wait);
}
