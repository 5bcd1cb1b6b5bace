// The registry's bearer tokens: short-lived HS256 JWTs naming the account and the actions granted
// per repository, as Distribution's token auth does.

import { SignJWT, jwtVerify } from "jose";
import type { Action } from "./scope.ts";

export interface Grant {
  type: "repository";
  name: string;
  actions: Action[];
}

export interface TokenClaims {
  /** Account name, or "anonymous". */
  sub: string;
  access: Grant[];
  /** `SHA256:…` of the key that signed the token request; absent for admin-issued tokens. */
  key?: string;
}

export const ANONYMOUS = "anonymous";
const ISSUER = "corral-registry";

export async function issueToken(key: Uint8Array, service: string, claims: TokenClaims, ttlSeconds: number): Promise<{ token: string; expiresIn: number; issuedAt: string }> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT(claims.key ? { access: claims.access, key: claims.key } : { access: claims.access })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuer(ISSUER)
    .setAudience(service)
    .setIssuedAt(now)
    .setNotBefore(now - 5)
    .setExpirationTime(now + ttlSeconds)
    .sign(key);
  return { token, expiresIn: ttlSeconds, issuedAt: new Date(now * 1000).toISOString() };
}

/** The token's claims, or a reason it is not acceptable (expired, bad signature, malformed). */
export async function verifyToken(key: Uint8Array, service: string, token: string): Promise<TokenClaims | { error: string }> {
  if (token.length > 16_384) return { error: "token is too long" };
  try {
    const { payload } = await jwtVerify(token, key, { issuer: ISSUER, audience: service, algorithms: ["HS256"] });
    const access = Array.isArray(payload["access"]) ? (payload["access"] as Grant[]) : [];
    const out: TokenClaims = { sub: typeof payload.sub === "string" ? payload.sub : ANONYMOUS, access };
    if (typeof payload["key"] === "string") out.key = payload["key"];
    return out;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ERR_JWT_EXPIRED") return { error: "token has expired" };
    return { error: "token is invalid" };
  }
}

export function grantedActions(claims: TokenClaims | undefined, repo: string): Set<Action> {
  const out = new Set<Action>();
  for (const g of claims?.access ?? []) {
    if (g && g.type === "repository" && g.name === repo && Array.isArray(g.actions)) g.actions.forEach((a) => out.add(a));
  }
  return out;
}
