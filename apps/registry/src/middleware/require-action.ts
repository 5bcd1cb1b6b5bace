// Authorisation of /v2/<ns>/<model>/… requests. The caller's actions on the repository are what
// the token grants plus `pull` on public repositories; anything missing is answered with 401 and a
// challenge naming the scope to ask for (docs/protocol.md, "Tokens and scopes").
//
// middleware/ holds Hono middleware and the per-request helpers they are built from; the
// primitives they use (tokens, scopes in auth/; repositories in services/) know nothing of HTTP.

import type { MiddlewareHandler } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { findNamespaceAndRepository } from "../services/repositories.ts";
import { parseRepoName } from "../services/names.ts";
import { challengeScope, type Action } from "../auth/scope.ts";
import { grantedActions } from "../auth/tokens.ts";
import { bearerClaims, challenge } from "./bearer.ts";
import { mirrorOf } from "../config.ts";

/** Resolves `:ns/:model`, checks the token, and requires `need` on the repository. */
export function requireAction(need: Action): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const repo = parseRepoName(c.req.param("ns") ?? "", c.req.param("model") ?? "");
    c.set("repo", repo);
    const scope = challengeScope(repo.path, need);
    const claims = await bearerClaims(c, scope);
    const granted = grantedActions(claims, repo.path);
    const { namespace, repository } = await findNamespaceAndRepository(c.var.registry, repo);
    if (repository?.visibility === "public") granted.add("pull");
    // A mirrored namespace is read-only, and a model not fetched yet is as visible as it will be
    // once it is (docs/protocol.md, "Mirrors").
    const mirror = mirrorOf(c.var.registry.config, repo.namespace);
    if (mirror && need !== "pull") {
      throw new RegistryError("DENIED", `${repo.namespace}/ is a read-only mirror of ${mirror.host}: pushes and deletes are refused; push to a namespace of your own`);
    }
    if (mirror && !repository && c.var.registry.config.mirrorVisibility === "public") granted.add("pull");
    if (!granted.has(need)) {
      throw new RegistryError("UNAUTHORIZED", `authentication required to ${need} ${repo.path}`).withDetail([{ Type: "repository", Name: repo.path, Action: need }]).withHeaders(challenge(c, scope));
    }
    c.set("subject", claims?.sub);
    c.set("access", { namespace, repository, actions: granted });
    await next();
  };
}
