// Bearer tokens already verified, remembered until they expire. Checking the HS256 signature and
// claims took a tenth of a manifest GET, and a client sends the same token for minutes. Whether a
// token verifies depends only on the key, the expected audience, the token and the clock; the clock
// only matters through `exp` (`nbf` lies in the past once a token has verified), so a remembered
// success stays the right answer until `exp`, which is checked on every use.

import { decodeJwt } from "jose";
import { verifyToken, type TokenClaims } from "./tokens.ts";

const MAX_TOKENS = 4096;

/** Per signing key (each registry has its own): `<audience>\n<token>` → claims and expiry. */
const verified = new WeakMap<Uint8Array, Map<string, { claims: TokenClaims; exp: number }>>();

/** verifyToken's answer, from memory when this token already verified and has not expired. */
export async function verifyTokenCached(key: Uint8Array, service: string, token: string): Promise<TokenClaims | { error: string }> {
  let byToken = verified.get(key);
  if (!byToken) verified.set(key, (byToken = new Map()));
  const id = `${service}\n${token}`;
  const hit = byToken.get(id);
  // jose treats a token as expired once the whole second `exp` is reached.
  if (hit && Math.floor(Date.now() / 1000) < hit.exp) return hit.claims;
  if (hit) byToken.delete(id);
  const claims = await verifyToken(key, service, token);
  if ("error" in claims) return claims;
  const { exp } = decodeJwt(token);
  if (typeof exp === "number") {
    if (byToken.size >= MAX_TOKENS) byToken.delete(byToken.keys().next().value!);
    if (Array.isArray(claims.access)) Object.freeze(claims.access);
    byToken.set(id, { claims: Object.freeze(claims), exp });
  }
  return claims;
}
