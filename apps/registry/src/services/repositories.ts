// Repositories and who may do what with them.

import { and, asc, eq, gt, inArray, or, sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { accounts, members, repositories } from "../db/schema.ts";
import { actionsForRole, type Action } from "../auth/scope.ts";
import { findAccount, roleOn, type Account } from "./accounts.ts";
import type { RepoName } from "./names.ts";
import { freeze, type CachedDatabase, type MemoSpec } from "./read-cache.ts";

export interface Repository {
  id: number;
  namespaceId: number;
  name: string;
  visibility: "public" | "private";
}

export async function findRepository(db: Database, namespace: Account, model: string): Promise<Repository | undefined> {
  const [row] = await db
    .select({ id: repositories.id, namespaceId: repositories.namespaceId, name: repositories.name, visibility: repositories.visibility })
    .from(repositories)
    .where(and(eq(repositories.namespaceId, namespace.id), eq(repositories.name, model)));
  return row;
}

/** Finds or creates the repository a push goes to. */
export async function ensureRepository({ db, reads }: CachedDatabase, namespace: Account, model: string, visibility: "public" | "private"): Promise<Repository> {
  await reads.changing([repositories], () => db.insert(repositories).values({ namespaceId: namespace.id, name: model, visibility }).onConflictDoNothing());
  const repo = await findRepository(db, namespace, model);
  if (!repo) throw new Error(`repository ${namespace.name}/${model} could not be created`);
  return repo;
}

const namespaceAndRepository: MemoSpec<{ namespace: Account | undefined; repository: Repository | undefined }> = {
  tables: [accounts, repositories],
  max: 10_000,
};

/** The namespace's account and the repository, in one query (the hot path of every request). */
export function findNamespaceAndRepository({ db, reads }: CachedDatabase, name: RepoName): Promise<{ namespace: Account | undefined; repository: Repository | undefined }> {
  return reads.read(namespaceAndRepository, name.path, async () => {
    const [row] = await db
      .select({
        account: { id: accounts.id, name: accounts.name, kind: accounts.kind },
        repository: { id: repositories.id, namespaceId: repositories.namespaceId, name: repositories.name, visibility: repositories.visibility },
      })
      .from(accounts)
      .leftJoin(repositories, and(eq(repositories.namespaceId, accounts.id), eq(repositories.name, name.model)))
      .where(eq(accounts.name, name.namespace));
    return Object.freeze({ namespace: freeze(row?.account), repository: freeze(row?.repository ?? undefined) });
  });
}

export interface Access {
  namespace: Account | undefined;
  repository: Repository | undefined;
  actions: Set<Action>;
}

/** What `account` (undefined: anonymous) may do on a repository: its role, plus pull when public. */
export async function accessTo(db: Database, account: Account | undefined, name: RepoName): Promise<Access> {
  const namespace = await findAccount(db, name.namespace);
  if (!namespace) return { namespace, repository: undefined, actions: new Set() };
  const repository = await findRepository(db, namespace, name.model);
  const actions = new Set<Action>(actionsForRole(await roleOn(db, account, namespace)));
  if (repository?.visibility === "public") actions.add("pull");
  return { namespace, repository, actions };
}

/** SQL condition on `repositories`: the account (undefined: anonymous) may pull it. */
export function readableBy(db: Database, account: Account | undefined): SQL {
  return account
    ? or(
        eq(repositories.visibility, "public"),
        eq(repositories.namespaceId, account.id),
        inArray(repositories.namespaceId, db.select({ id: members.namespaceId }).from(members).where(eq(members.accountId, account.id))),
      )!
    : eq(repositories.visibility, "public");
}

/** Repository paths the account may pull, in order, after `last`, at most `n`. */
export async function visibleRepositories(db: Database, account: Account | undefined, n: number, last: string): Promise<string[]> {
  const path = sql<string>`${accounts.name} || '/' || ${repositories.name}`;
  const readable = readableBy(db, account);
  const rows = await db
    .select({ path })
    .from(repositories)
    .innerJoin(accounts, eq(accounts.id, repositories.namespaceId))
    .where(and(readable, last ? gt(path, last) : undefined))
    .orderBy(asc(path))
    .limit(n);
  return rows.map((r) => r.path);
}
