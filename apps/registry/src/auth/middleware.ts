// Bearer authentication and authorisation for /v2/<ns>/<model>/… requests. The caller's actions on
// the repository are what the token grants plus `pull` on public repositories; anything missing
// is answered with 401 and a challenge naming the scope to ask for (§6.4).

import type { Context, MiddlewareHandler } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { publicURL, serviceHost } from "../http/public-urls.ts";
import { findAccount, type Account } from "../services/accounts.ts";
import { findNamespaceAndRepository } from "../services/repositories.ts";
import { parseRepoName } from "../services/names.ts";
import { challengeScope, type Action } from "./scope.ts";
import { ANONYMOUS, grantedActions, type TokenClaims } from "./tokens.ts";
import { verifyTokenCached } from "./verified-tokens.ts";

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
  if (!m) throw new RegistryError("UNAUTHORIZED", "expected a Bearer token from the token endpoint", undefined, challenge(c, scopeForChallenge, "invalid_token"));
  const claims = await verifyTokenCached(c.var.registry.secrets.tokenKey, serviceName(c), m[1]!);
  if ("error" in claims) throw new RegistryError("UNAUTHORIZED", claims.error, undefined, challenge(c, scopeForChallenge, "invalid_token"));
  return claims;
}

export async function accountOf(c: Context<AppEnv>, claims: TokenClaims | undefined): Promise<Account | undefined> {
  if (!claims || claims.sub === ANONYMOUS) return undefined;
  return findAccount(c.var.registry.db, claims.sub);
}

/** Resolves `:ns/:model`, checks the token, and requires `need` on the repository. */
export function requireAction(need: Action): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const repo = parseRepoName(c.req.param("ns") ?? "", c.req.param("model") ?? "");
    c.set("repo", repo);
    const scope = challengeScope(repo.path, need);
    const claims = await bearerClaims(c, scope);
    const granted = grantedActions(claims, repo.path);
    const { namespace, repository } = await findNamespaceAndRepository(c.var.registry.db, repo);
    if (repository?.visibility === "public") granted.add("pull");
    if (!granted.has(need)) {
      throw new RegistryError("UNAUTHORIZED", `authentication required to ${need} ${repo.path}`, [{ Type: "repository", Name: repo.path, Action: need }], challenge(c, scope));
    }
    c.set("subject", claims?.sub);
    c.set("access", { namespace, repository, actions: granted });
    await next();
  };
}
