// Passwordless sign-in for the web catalog. `corral login` proves possession of a registered
// ed25519 key with a signed request and gets a one-time link; opening the link (and confirming)
// turns it into a browser session. Both are bound to that key: removing the key from the account
// ends every session it opened. Only sha256 hashes of the link and session secrets are stored.

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { and, eq, gt, lt, sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { accounts, loginLinks, publicKeys, webSessions } from "../db/schema.ts";
import type { Account } from "./accounts.ts";

/** How long a printed link can be opened. */
export const LOGIN_LINK_TTL_SECONDS = 10 * 60;
/** How long a browser stays signed in. */
export const SESSION_TTL_SECONDS = 14 * 24 * 3600;

const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;

function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

function hash(secret: string): string {
  return createHash("sha256").update(secret).digest("base64url");
}

export function isSecretShape(s: string): boolean {
  return SECRET_RE.test(s);
}

/** The key must still be registered to the account for a link or a session to count. */
const keyStillRegistered = (accountId: SQL, fingerprint: SQL): SQL =>
  sql`exists (select 1 from ${publicKeys} where ${publicKeys.accountId} = ${accountId} and ${publicKeys.fingerprint} = ${fingerprint})`;

export async function createLoginLink(db: Database, account: Account, keyFingerprint: string): Promise<{ token: string; expiresAt: Date }> {
  const token = newSecret();
  const expiresAt = new Date(Date.now() + LOGIN_LINK_TTL_SECONDS * 1000);
  await db.insert(loginLinks).values({ tokenHash: hash(token), accountId: account.id, keyFingerprint, expiresAt });
  if (Math.random() < 0.05) await db.delete(loginLinks).where(lt(loginLinks.expiresAt, sql`now()`));
  return { token, expiresAt };
}

export interface LinkInfo {
  account: Account;
  keyFingerprint: string;
  expiresAt: Date;
}

/** What an unused, unexpired link would sign in as (for the confirmation page); does not use it. */
export async function peekLoginLink(db: Database, token: string): Promise<LinkInfo | undefined> {
  if (!isSecretShape(token)) return undefined;
  const [row] = await db
    .select({ id: accounts.id, name: accounts.name, kind: accounts.kind, keyFingerprint: loginLinks.keyFingerprint, expiresAt: loginLinks.expiresAt })
    .from(loginLinks)
    .innerJoin(accounts, eq(accounts.id, loginLinks.accountId))
    .where(and(eq(loginLinks.tokenHash, hash(token)), gt(loginLinks.expiresAt, sql`now()`), keyStillRegistered(sql`${loginLinks.accountId}`, sql`${loginLinks.keyFingerprint}`)));
  return row ? { account: { id: row.id, name: row.name, kind: row.kind }, keyFingerprint: row.keyFingerprint, expiresAt: new Date(row.expiresAt) } : undefined;
}

export interface Session {
  /** The cookie value. */
  id: string;
  csrfToken: string;
  expiresAt: Date;
}

/** Uses the link (once: the row is deleted in the same statement that reads it) and opens a session. */
export async function redeemLoginLink(db: Database, token: string): Promise<{ session: Session; account: Account } | undefined> {
  if (!isSecretShape(token)) return undefined;
  const [link] = await db
    .delete(loginLinks)
    .where(and(eq(loginLinks.tokenHash, hash(token)), gt(loginLinks.expiresAt, sql`now()`), keyStillRegistered(sql`${loginLinks.accountId}`, sql`${loginLinks.keyFingerprint}`)))
    .returning({ accountId: loginLinks.accountId, keyFingerprint: loginLinks.keyFingerprint });
  if (!link) return undefined;
  const [account] = await db.select({ id: accounts.id, name: accounts.name, kind: accounts.kind }).from(accounts).where(eq(accounts.id, link.accountId));
  if (!account) return undefined;
  const session: Session = { id: newSecret(), csrfToken: newSecret(), expiresAt: new Date(Date.now() + SESSION_TTL_SECONDS * 1000) };
  await db.insert(webSessions).values({ idHash: hash(session.id), accountId: account.id, keyFingerprint: link.keyFingerprint, csrfToken: session.csrfToken, expiresAt: session.expiresAt });
  if (Math.random() < 0.05) await db.delete(webSessions).where(lt(webSessions.expiresAt, sql`now()`));
  return { session, account };
}

export interface SignedIn {
  account: Account;
  keyFingerprint: string;
  csrfToken: string;
}

export async function findSession(db: Database, id: string): Promise<SignedIn | undefined> {
  if (!isSecretShape(id)) return undefined;
  const [row] = await db
    .select({ id: accounts.id, name: accounts.name, kind: accounts.kind, keyFingerprint: webSessions.keyFingerprint, csrfToken: webSessions.csrfToken })
    .from(webSessions)
    .innerJoin(accounts, eq(accounts.id, webSessions.accountId))
    .where(and(eq(webSessions.idHash, hash(id)), gt(webSessions.expiresAt, sql`now()`), keyStillRegistered(sql`${webSessions.accountId}`, sql`${webSessions.keyFingerprint}`)));
  return row ? { account: { id: row.id, name: row.name, kind: row.kind }, keyFingerprint: row.keyFingerprint, csrfToken: row.csrfToken } : undefined;
}

export async function endSession(db: Database, id: string): Promise<void> {
  if (!isSecretShape(id)) return;
  await db.delete(webSessions).where(eq(webSessions.idHash, hash(id)));
}

export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
