// Bearer tokens already verified, remembered until they expire. Checking the HS256 signature and
// claims took a tenth of a manifest GET, and a client sends the same token for minutes. Whether a
// token verifies depends only on the key, the expected audience, the token and the clock; the clock
// only matters through `exp` (`nbf` lies in the past once a token has verified), so a remembered
// success stays the right answer until `exp`, which is checked on every use. The memory is the
// registry's (Registry.verifiedTokens), as is the key.

import { decodeJwt } from "jose";
import { ExpiringMap } from "@corral/shared/expiring-map";
import type { Registry } from "../registry.ts";
import { verifyToken, type TokenClaims } from "./tokens.ts";

const MAX_TOKENS = 4096;

/** Remembered successes: the claims, until the token's `exp` (whole seconds). */
export type VerifiedTokens = ExpiringMap<string, TokenClaims>;

export function verifiedTokens(): VerifiedTokens {
  return new ExpiringMap(MAX_TOKENS);
}

/** verifyToken's answer with the registry's key, from memory when this token already verified and has not expired. */
export async function verifyTokenCached(reg: Pick<Registry, "secrets" | "verifiedTokens">, service: string, token: string): Promise<TokenClaims | { error: string }> {
  const remembered = reg.verifiedTokens;
  const id = `${service}\n${token}`;
  // jose treats a token as expired once the whole second `exp` is reached.
  const hit = remembered.get(id, Math.floor(Date.now() / 1000));
  if (hit) return hit;
  const claims = await verifyToken(reg.secrets.tokenKey, service, token);
  if ("error" in claims) return claims;
  const { exp } = decodeJwt(token);
  if (typeof exp === "number") {
    if (Array.isArray(claims.access)) Object.freeze(claims.access);
    remembered.set(id, Object.freeze(claims), exp);
  }
  return claims;
}
