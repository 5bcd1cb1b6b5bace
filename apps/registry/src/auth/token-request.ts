// Verifies Ollama's signed token request (docs/protocol.md, "Signed token request" and "Tokens and scopes"): an ed25519 signature over
// `GET,<exact URL>,<constant>`, a timestamp inside the window and a nonce never seen before.

import { lt, sql } from "drizzle-orm";
import { EMPTY_BODY_HASH, KeyFormatError, fingerprint, parseSignedAuthorization, publicKeyWire, verify } from "@corral/shared/signing";
import type { Database } from "../db/open.ts";
import { nonces } from "../db/schema.ts";
import { RegistryError } from "../errors.ts";

export interface SignedRequest {
  /** base64 of the SSH wire public key. */
  publicKey: string;
  /** `SHA256:…` of that key. */
  fingerprint: string;
}

export interface VerifySignedOptions {
  /** The URLs the client may have signed: this registry's own. */
  candidateURLs: string[];
  /** The request's query, with its `ts` and `nonce`. */
  query: URLSearchParams;
  /** How far `ts` may be from the server's clock. */
  windowSeconds: number;
  /** The server's clock, in milliseconds (default: now). */
  now?: number;
  /** The method the signature covers (default GET). */
  method?: "GET" | "POST";
}

const NONCE_RE = /^[A-Za-z0-9_-]{8,128}$/;

/**
 * Checks the Authorization value against the URLs the client may have requested (this registry's
 * own, from http/public-urls.ts: never one built from the request's Host, or a request signed for
 * another server could be relayed here) and consumes the nonce, only once the signature and `ts`
 * hold. Throws UNAUTHORIZED otherwise.
 * The signature covers `<method>,<URL>,<hash of the empty body>`: GET for token requests, POST for
 * the web catalog's login-link request, so one can never stand in for the other.
 */
export async function verifySignedRequest(db: Database, authorization: string, opts: VerifySignedOptions): Promise<SignedRequest> {
  const { candidateURLs, query, windowSeconds, now = Date.now(), method = "GET" } = opts;
  let auth;
  try {
    auth = parseSignedAuthorization(authorization);
  } catch (e) {
    if (e instanceof KeyFormatError) throw new RegistryError("UNAUTHORIZED", `malformed signed request: ${e.message}`);
    throw e;
  }
  if (!candidateURLs.some((u) => verify(auth.publicKey, `${method},${u},${EMPTY_BODY_HASH}`, auth.signature))) {
    throw new RegistryError("UNAUTHORIZED", "the signature does not match this request");
  }
  const tsText = query.get("ts") ?? "";
  const nonce = query.get("nonce") ?? "";
  if (!/^\d{1,12}$/.test(tsText)) throw new RegistryError("UNAUTHORIZED", "the signed request has no valid ts parameter");
  const ts = Number(tsText) * 1000;
  if (Math.abs(now - ts) > windowSeconds * 1000) {
    throw new RegistryError("UNAUTHORIZED", `the signed request's timestamp is more than ${windowSeconds}s from the server's clock`);
  }
  if (!NONCE_RE.test(nonce)) throw new RegistryError("UNAUTHORIZED", "the signed request has no valid nonce parameter");
  // A nonce must outlive every timestamp that could still be accepted with it.
  const expiresAt = new Date(ts + windowSeconds * 1000 + 60_000);
  const inserted = await db.insert(nonces).values({ nonce, expiresAt }).onConflictDoNothing().returning({ nonce: nonces.nonce });
  if (inserted.length === 0) throw new RegistryError("UNAUTHORIZED", "this signed request was already used (replayed nonce)");
  if (Math.random() < 0.02) await db.delete(nonces).where(lt(nonces.expiresAt, sql`now()`));
  return { publicKey: publicKeyWire(auth.publicKey).toString("base64"), fingerprint: fingerprint(auth.publicKey) };
}

