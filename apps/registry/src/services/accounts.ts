// Accounts, their keys, organisations and roles: the operations behind the admin CLI and API,
// plus the lookups authorisation needs. Names follow the namespace rules, in lower case.

import { and, asc, eq } from "drizzle-orm";
import { fingerprint, formatPublicKeyLine, KeyFormatError, parsePublicKeyLine } from "@corral/shared/signing";
import type { Database } from "../db/open.ts";
import { AdminError } from "../errors.ts";
import { accounts, members, publicKeys, repositories } from "../db/schema.ts";
import { isRole, type Role } from "../auth/scope.ts";
import { ANONYMOUS } from "../auth/tokens.ts";
import type { CachedDatabase } from "./read-cache.ts";
import { writeMembership } from "./membership.ts";
import { namespaceProblem, repoNameProblem } from "./names.ts";

export interface Account {
  id: number;
  name: string;
  kind: "user" | "org";
}

export interface UserInfo {
  name: string;
  kind: "user" | "org";
  keys: Array<{ fingerprint: string; key: string }>;
  members: Array<{ name: string; role: Role }>;
}

const RESERVED = new Set([ANONYMOUS, "_catalog", "token", "v2"]);

export function checkAccountName(name: string): string {
  const problem = namespaceProblem(name);
  if (problem) throw new AdminError("INVALID_REQUEST", `invalid account name "${name}": ${problem.replace("namespace", "name")}`);
  const lower = name.toLowerCase();
  if (RESERVED.has(lower)) throw new AdminError("INVALID_REQUEST", `invalid account name "${name}": the name is reserved`);
  return lower;
}

function parseKey(line: string): { base64: string; fingerprint: string; comment: string } {
  try {
    const k = parsePublicKeyLine(line);
    return { base64: k.base64, fingerprint: fingerprint(k.publicKey), comment: k.comment };
  } catch (e) {
    if (e instanceof KeyFormatError) throw new AdminError("INVALID_REQUEST", e.message);
    throw e;
  }
}

export async function findAccount(db: Database, name: string): Promise<Account | undefined> {
  const [row] = await db.select({ id: accounts.id, name: accounts.name, kind: accounts.kind }).from(accounts).where(eq(accounts.name, name.toLowerCase()));
  return row;
}

async function mustFind(db: Database, name: string, kind?: "user" | "org"): Promise<Account> {
  const a = await findAccount(db, checkAccountName(name));
  if (!a || (kind && a.kind !== kind)) throw new AdminError("NOT_FOUND", `${kind === "org" ? "organisation" : kind ?? "account"} "${name}" does not exist`);
  return a;
}

/** The account a registered key belongs to. */
export async function accountForKey(db: Database, base64Key: string): Promise<Account | undefined> {
  const [row] = await db
    .select({ id: accounts.id, name: accounts.name, kind: accounts.kind })
    .from(publicKeys)
    .innerJoin(accounts, eq(accounts.id, publicKeys.accountId))
    .where(eq(publicKeys.key, base64Key));
  return row;
}

/** The caller's role on a namespace: its own account is the owner; otherwise its membership. */
export async function roleOn(db: Database, account: Account | undefined, namespace: Account): Promise<Role | undefined> {
  if (!account) return undefined;
  if (account.id === namespace.id) return "owner";
  const [m] = await db.select({ role: members.role }).from(members).where(and(eq(members.namespaceId, namespace.id), eq(members.accountId, account.id)));
  return m?.role;
}

export async function addUser({ db, reads }: CachedDatabase, name: string, keyLines: string[] = []): Promise<UserInfo> {
  const lower = checkAccountName(name);
  const keys = keyLines.map(parseKey);
  return reads.changing([accounts, publicKeys], () =>
    db.transaction(async (tx) => {
      const [row] = await tx.insert(accounts).values({ name: lower, kind: "user" }).onConflictDoNothing().returning();
      if (!row) throw new AdminError("CONFLICT", `an account named "${lower}" already exists`);
      for (const k of keys) await insertKey(tx, row.id, k);
      return describe(tx, row);
    }),
  );
}

async function insertKey(db: Database, accountId: number, k: { base64: string; fingerprint: string; comment: string }): Promise<void> {
  const [row] = await db.insert(publicKeys).values({ accountId, key: k.base64, fingerprint: k.fingerprint, comment: k.comment }).onConflictDoNothing().returning();
  if (!row) throw new AdminError("CONFLICT", `key ${k.fingerprint} is already registered`);
}

export async function addKey(db: Database, user: string, line: string): Promise<UserInfo> {
  const k = parseKey(line);
  const account = await mustFind(db, user, "user");
  await insertKey(db, account.id, k);
  return describe(db, account);
}

/** Removes a key given as its `ssh-ed25519` line or its `SHA256:` fingerprint. */
export async function removeKey(db: Database, user: string, keyOrFingerprint: string): Promise<UserInfo> {
  const account = await mustFind(db, user, "user");
  const text = keyOrFingerprint.trim();
  const cond = text.startsWith("SHA256:") ? eq(publicKeys.fingerprint, text) : eq(publicKeys.key, parseKey(text).base64);
  const removed = await db.delete(publicKeys).where(and(eq(publicKeys.accountId, account.id), cond)).returning();
  if (removed.length === 0) throw new AdminError("NOT_FOUND", `user "${account.name}" has no such key`);
  return describe(db, account);
}

export async function createOrg({ db, reads }: CachedDatabase, name: string, owner: string): Promise<UserInfo> {
  const lower = checkAccountName(name);
  const ownerAccount = await mustFind(db, owner, "user");
  return reads.changing([accounts, members], () =>
    db.transaction(async (tx) => {
      const [row] = await tx.insert(accounts).values({ name: lower, kind: "org" }).onConflictDoNothing().returning();
      if (!row) throw new AdminError("CONFLICT", `an account named "${lower}" already exists`);
      await writeMembership(tx, row, ownerAccount, "owner");
      return describe(tx, row);
    }),
  );
}

/** Gives a user a role on a namespace (an organisation, or another user's own namespace). */
export async function grant(db: Database, namespace: string, user: string, role: string): Promise<UserInfo> {
  if (!isRole(role)) throw new AdminError("INVALID_REQUEST", `invalid role "${role}": expected reader, writer or owner`);
  const ns = await mustFind(db, namespace);
  const account = await mustFind(db, user, "user");
  await writeMembership(db, ns, account, role);
  return describe(db, ns);
}

export async function addMember(db: Database, org: string, user: string, role: string): Promise<UserInfo> {
  await mustFind(db, org, "org");
  return grant(db, org, user, role);
}

export async function setVisibility({ db, reads }: CachedDatabase, namespace: string, model: string, visibility: string): Promise<{ repository: string; visibility: string }> {
  if (visibility !== "public" && visibility !== "private") throw new AdminError("INVALID_REQUEST", `invalid visibility "${visibility}": expected public or private`);
  const ns = await mustFind(db, namespace);
  const modelName = model.toLowerCase();
  const problem = repoNameProblem(ns.name, model);
  if (problem) throw new AdminError("INVALID_REQUEST", `invalid model name "${model}": ${problem}`);
  // Only a pushed model changes: creating the repository here would put an empty model in the
  // catalog (a typo becomes a public name nobody pushed). Its first push decides its visibility from
  // REGISTRY_DEFAULT_VISIBILITY, private unless set otherwise.
  const changed = await reads.changing([repositories], () =>
    db
      .update(repositories)
      .set({ visibility })
      .where(and(eq(repositories.namespaceId, ns.id), eq(repositories.name, modelName)))
      .returning({ id: repositories.id }),
  );
  if (changed.length === 0) throw new AdminError("NOT_FOUND", `no model ${ns.name}/${modelName}; push it first`);
  return { repository: `${ns.name}/${modelName}`, visibility };
}

async function describe(db: Database, a: Account): Promise<UserInfo> {
  const keys = await db.select({ fingerprint: publicKeys.fingerprint, key: publicKeys.key }).from(publicKeys).where(eq(publicKeys.accountId, a.id)).orderBy(asc(publicKeys.id));
  const ms = await db
    .select({ name: accounts.name, role: members.role })
    .from(members)
    .innerJoin(accounts, eq(accounts.id, members.accountId))
    .where(eq(members.namespaceId, a.id))
    .orderBy(asc(accounts.name));
  return {
    name: a.name,
    kind: a.kind,
    keys: keys.map((k) => ({ fingerprint: k.fingerprint, key: formatPublicKeyLine(Buffer.from(k.key, "base64").subarray(19)) })),
    members: ms,
  };
}

export async function listAccounts(db: Database): Promise<UserInfo[]> {
  const rows = await db.select({ id: accounts.id, name: accounts.name, kind: accounts.kind }).from(accounts).orderBy(asc(accounts.name));
  const out: UserInfo[] = [];
  for (const r of rows) out.push(await describe(db, r));
  return out;
}
