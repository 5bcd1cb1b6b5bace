// Request-level authentication: the bearer token a request carries, the account behind it and the
// challenge that tells a client where to get a token (docs/protocol.md, "Tokens and scopes").
//
// middleware/ is the layer between the routes and everything below them: Hono middleware and the
// per-request helpers they are built from, which read the request context (`c.req`, `c.var`) and
// answer with HTTP errors. Primitives that work without a request (tokens, scopes, secrets, rate
// buckets in auth/; blob drivers in storage/) stay below and never import from here.

import type { Context } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { publicURL, serviceHost } from "../http/public-urls.ts";
import { findAccount, type Account } from "../services/accounts.ts";
import { ANONYMOUS, type TokenClaims } from "../auth/tokens.ts";
import { verifyTokenCached } from "../auth/verified-tokens.ts";

/** The token audience: one per registry, whichever of its names the client used. */
export function serviceName(c: Context<AppEnv>): string {
  return serviceHost(c.var.registry.urls);
}

export function challenge(c: Context<AppEnv>, scope: string | undefined, error?: string): Record<string, string> {
  // The realm is on the host the client came to: clients refuse realms on any other.
  let value = `Bearer realm="${publicURL(c)}/v2/token",service="${serviceName(c)}"`;
  if (scope) value += `,scope="${scope}"`;
  if (error) value += `,error="invalid_token"`;
  return { "WWW-Authenticate": value };
}

/** The verified claims of the request's bearer token; undefined without one; 401 for a bad one. */
export async function bearerClaims(c: Context<AppEnv>, scopeForChallenge: string | undefined): Promise<TokenClaims | undefined> {
  const header = c.req.header("authorization");
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new RegistryError("UNAUTHORIZED", "expected a Bearer token from the token endpoint").withHeaders(challenge(c, scopeForChallenge, "invalid_token"));
  const claims = await verifyTokenCached(c.var.registry, serviceName(c), m[1]!);
  if ("error" in claims) throw new RegistryError("UNAUTHORIZED", claims.error).withHeaders(challenge(c, scopeForChallenge, "invalid_token"));
  return claims;
}

export async function accountOf(c: Context<AppEnv>, claims: TokenClaims | undefined): Promise<Account | undefined> {
  if (!claims || claims.sub === ANONYMOUS) return undefined;
  return findAccount(c.var.registry.db, claims.sub);
}
