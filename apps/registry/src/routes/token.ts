// GET /v2/token: the token realm. A request signed with a registered ed25519 key gets the actions
// its account may perform on each requested repository; an unsigned request, or one signed by a key
// nobody registered, gets an anonymous token (pull on public repositories).

import { Hono } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { signedRequestURLs } from "../http/public-urls.ts";
import { serviceName } from "../middleware/bearer.ts";
import { parseScope } from "../auth/scope.ts";
import { verifySignedRequest } from "../auth/token-request.ts";
import { limitByAddress, limitByKey } from "../middleware/rate-limit.ts";
import { ANONYMOUS, issueToken, type Grant } from "../auth/tokens.ts";
import { accountForKey, type Account } from "../services/accounts.ts";
import { parseRepoPath } from "../services/names.ts";
import { accessTo } from "../services/repositories.ts";

const MAX_SCOPES = 32;

export const token = new Hono<AppEnv>().get("/", limitByAddress, async (c) => {
  const reg = c.var.registry;
  const url = new URL(c.req.url);
  // The signature covers the URL exactly as sent, so use the raw request line when there is one.
  const raw = c.env?.incoming?.url ?? `${url.pathname}${url.search}`;
  const query = new URLSearchParams(raw.includes("?") ? raw.slice(raw.indexOf("?") + 1) : "");
  let account: Account | undefined;
  let keyFingerprint: string | undefined;
  const authorization = c.req.header("authorization");
  if (authorization) {
    if (/^(Bearer|Basic)\s/i.test(authorization)) {
      throw new RegistryError("UNAUTHORIZED", "this registry accepts only requests signed with an ed25519 key (Ollama's token request)");
    }
    const signed = await verifySignedRequest(reg.db, authorization, { candidateURLs: signedRequestURLs(c, raw), query, windowSeconds: reg.config.signatureWindowSeconds });
    limitByKey(c, signed.fingerprint);
    account = await accountForKey(reg.db, signed.publicKey);
    if (account) keyFingerprint = signed.fingerprint;
  }
  const items = query.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
  if (items.length > MAX_SCOPES) throw new RegistryError("INVALID_REQUEST", `at most ${MAX_SCOPES} scopes may be requested at once`);
  const access: Grant[] = [];
  for (const item of items) {
    const scope = parseScope(item);
    if (!scope) continue;
    let name;
    try {
      name = parseRepoPath(scope.name);
    } catch {
      continue;
    }
    const allowed = (await accessTo(reg.db, account, name)).actions;
    const actions = scope.actions.filter((a) => allowed.has(a));
    if (actions.length) access.push({ type: "repository", name: name.path, actions });
  }
  const t = await issueToken(reg.secrets.tokenKey, serviceName(c), { sub: account?.name ?? ANONYMOUS, access, ...(keyFingerprint ? { key: keyFingerprint } : {}) }, reg.config.tokenTTLSeconds);
  return c.json({ token: t.token, access_token: t.token, expires_in: t.expiresIn, issued_at: t.issuedAt });
});
