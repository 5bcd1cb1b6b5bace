// The web catalog's view of the registry: models a visitor may see (recently updated, by namespace,
// by search over names and descriptions), a model's tags with what their layers hold, who pushed
// last, and the changes owners make from the web (description, visibility, organisation members).

import { and, asc, desc, eq, inArray, isNotNull, sql, type SQL } from "drizzle-orm";
import { parseManifest, MediaType, manifestSize, type Descriptor, type Manifest } from "@corral/shared/manifest";
import type { Database } from "../db/open.ts";
import { accounts, blobFacts, manifestBlobs, manifests, members, pushes, repositories, tags } from "../db/schema.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { isRole, type Role } from "../auth/scope.ts";
import { AdminError, findAccount, roleOn, type Account } from "./accounts.ts";
import { readableBy } from "./repositories.ts";
import { blobFactsFor, type BlobRef, type GGUFFacts, type TextFacts } from "./model-facts.ts";

/** Longest description accepted from the web form. */
export const MAX_DESCRIPTION_CHARS = 64 * 1024;
const MAX_QUERY_WORDS = 8;

export interface ModelSummary {
  namespace: string;
  name: string;
  visibility: "public" | "private";
  description: string;
  tagCount: number;
  /** Latest tag update; null for a repository without tags. */
  updatedAt: Date | null;
  /** Architectures and parameter counts of its tags' model layers, as far as they have been read. */
  architectures: string[];
  parameterCounts: number[];
}

interface ListOptions {
  /** Free text: words match names and descriptions by prefix; the whole text matches `ns/model` as a substring. */
  query?: string;
  namespaceId?: number;
  /** Leave out repositories without tags. */
  taggedOnly?: boolean;
  limit: number;
}

/** Words of a query as a prefix-matching tsquery (`w1:* & w2:*`), or undefined when it has none. */
export function toTsQuery(query: string): string | undefined {
  const words = (query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, MAX_QUERY_WORDS);
  return words.length ? words.map((w) => `${w}:*`).join(" & ") : undefined;
}

function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

// The same expression as the `repositories_search` index.
const searchVector = sql`to_tsvector('simple', ${repositories.name} || ' ' || ${repositories.description})`;

/** Models the account may see, newest first (or best match first for a query). */
export async function listModels(db: Database, account: Account | undefined, opts: ListOptions): Promise<ModelSummary[]> {
  const updatedAt = sql<Date | null>`(select max(${tags.updatedAt}) from ${tags} where ${tags.repositoryId} = ${repositories.id})`;
  const tagCount = sql<number>`(select count(*)::int from ${tags} where ${tags.repositoryId} = ${repositories.id})`;
  const conds: Array<SQL | undefined> = [readableBy(db, account)];
  if (opts.namespaceId !== undefined) conds.push(eq(repositories.namespaceId, opts.namespaceId));
  if (opts.taggedOnly) conds.push(sql`exists (select 1 from ${tags} where ${tags.repositoryId} = ${repositories.id})`);
  let rank: SQL | undefined;
  const q = opts.query?.trim().slice(0, 200);
  if (q) {
    const tsq = toTsQuery(q);
    const path = sql`${accounts.name} || '/' || ${repositories.name}`;
    const byText = tsq ? sql`${searchVector} @@ to_tsquery('simple', ${tsq})` : sql`false`;
    conds.push(sql`(${byText} or ${path} ilike ${likePattern(q.toLowerCase())})`);
    rank = sql`(case when ${repositories.name} = ${q.toLowerCase()} or ${path} = ${q.toLowerCase()} then 10 else 0 end
      + case when ${path} ilike ${likePattern(q.toLowerCase())} then 2 else 0 end
      + ${tsq ? sql`ts_rank(${searchVector}, to_tsquery('simple', ${tsq}))` : sql`0`})`;
  }
  const rows = await db
    .select({
      id: repositories.id,
      namespace: accounts.name,
      name: repositories.name,
      visibility: repositories.visibility,
      description: repositories.description,
      updatedAt,
      tagCount,
    })
    .from(repositories)
    .innerJoin(accounts, eq(accounts.id, repositories.namespaceId))
    .where(and(...conds))
    .orderBy(...(rank ? [desc(rank)] : []), sql`${updatedAt} desc nulls last`, asc(accounts.name), asc(repositories.name))
    .limit(opts.limit);
  const facts = await factsByRepository(db, rows.map((r) => r.id));
  return rows.map((r) => ({
    namespace: r.namespace,
    name: r.name,
    visibility: r.visibility,
    description: r.description,
    tagCount: Number(r.tagCount),
    updatedAt: r.updatedAt ? new Date(r.updatedAt) : null,
    architectures: [...(facts.get(r.id)?.architectures ?? [])],
    parameterCounts: [...(facts.get(r.id)?.parameterCounts ?? [])].sort((a, b) => a - b),
  }));
}

/** The cached GGUF facts of every tagged manifest's layers, per repository (never reads the store). */
async function factsByRepository(db: Database, ids: number[]): Promise<Map<number, { architectures: Set<string>; parameterCounts: Set<number> }>> {
  const out = new Map<number, { architectures: Set<string>; parameterCounts: Set<number> }>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectDistinct({ repositoryId: tags.repositoryId, facts: blobFacts.facts })
    .from(tags)
    .innerJoin(manifestBlobs, and(eq(manifestBlobs.repositoryId, tags.repositoryId), eq(manifestBlobs.manifestDigest, tags.manifestDigest)))
    .innerJoin(blobFacts, and(eq(blobFacts.digest, manifestBlobs.blobDigest), eq(blobFacts.kind, "gguf"), isNotNull(blobFacts.facts)))
    .where(inArray(tags.repositoryId, ids));
  for (const row of rows) {
    const facts = row.facts as GGUFFacts;
    const entry = out.get(row.repositoryId) ?? { architectures: new Set(), parameterCounts: new Set() };
    entry.architectures.add(facts.architecture);
    if (facts.parameterCount > 0) entry.parameterCounts.add(facts.parameterCount);
    out.set(row.repositoryId, entry);
  }
  return out;
}

export interface NamespaceView {
  account: Account;
  role: Role | undefined;
  models: ModelSummary[];
  /** Shown to members only. */
  members: Array<{ name: string; role: Role }> | undefined;
}

export async function namespaceView(db: Database, viewer: Account | undefined, name: string): Promise<NamespaceView | undefined> {
  const account = await findAccount(db, name);
  if (!account) return undefined;
  const role = await roleOn(db, viewer, account);
  const models = await listModels(db, viewer, { namespaceId: account.id, limit: 500 });
  const list = role ? await listMembers(db, account) : undefined;
  return { account, role, models, members: list };
}

export async function listMembers(db: Database, namespace: Account): Promise<Array<{ name: string; role: Role }>> {
  return db
    .select({ name: accounts.name, role: members.role })
    .from(members)
    .innerJoin(accounts, eq(accounts.id, members.accountId))
    .where(eq(members.namespaceId, namespace.id))
    .orderBy(asc(accounts.name));
}

// ---- one model ----------------------------------------------------------------------------------

export interface LayerText {
  digest: string;
  size: number;
  text: string | null;
  truncated: boolean;
}

export interface TagView {
  name: string;
  digest: string;
  updatedAt: Date;
  /** Sum of the layers and the config. */
  size: number;
  manifest: Manifest | null;
  /** Why the manifest could not be read, if it could not. */
  manifestError: string | null;
  model: { digest: string; size: number; facts: GGUFFacts | null; error: string | null } | null;
}

export interface PushRecord {
  tag: string | null;
  manifestDigest: string;
  account: string | null;
  keyFingerprint: string | null;
  pushedAt: Date;
}

export interface ModelView {
  namespace: Account;
  repository: { id: number; name: string; visibility: "public" | "private"; description: string; createdAt: Date };
  role: Role | undefined;
  tags: TagView[];
  lastPush: PushRecord | undefined;
}

/** The layers a tag page shows as text. */
export interface TagContents {
  template: LayerText | null;
  system: LayerText | null;
  params: LayerText | null;
  licenses: LayerText[];
  messages: LayerText | null;
  adapters: Descriptor[];
  projectors: Descriptor[];
}

/** The model if the viewer may see it: a private model is as absent as a missing one. */
export async function modelView(db: Database, store: BlobStore, viewer: Account | undefined, ns: string, model: string): Promise<ModelView | undefined> {
  const namespace = await findAccount(db, ns);
  if (!namespace) return undefined;
  const [repo] = await db
    .select({ id: repositories.id, name: repositories.name, visibility: repositories.visibility, description: repositories.description, createdAt: repositories.createdAt })
    .from(repositories)
    .where(and(eq(repositories.namespaceId, namespace.id), eq(repositories.name, model.toLowerCase())));
  if (!repo) return undefined;
  const role = await roleOn(db, viewer, namespace);
  if (repo.visibility !== "public" && !role) return undefined;
  const rows = await db
    .select({ name: tags.name, digest: tags.manifestDigest, updatedAt: tags.updatedAt, content: manifests.content })
    .from(tags)
    .innerJoin(manifests, and(eq(manifests.repositoryId, tags.repositoryId), eq(manifests.digest, tags.manifestDigest)))
    .where(eq(tags.repositoryId, repo.id))
    .orderBy(desc(tags.updatedAt), asc(tags.name));
  const parsed = rows.map((r) => {
    try {
      return { ...r, manifest: parseManifest(r.content), manifestError: null };
    } catch (e) {
      return { ...r, manifest: null, manifestError: (e as Error).message };
    }
  });
  const modelLayers = parsed.flatMap((r) => (r.manifest ? r.manifest.layers.filter((l) => l.mediaType === MediaType.model).slice(0, 1) : []));
  const facts = await blobFactsFor(db, store, modelLayers.map((l): BlobRef => ({ digest: l.digest, size: l.size, kind: "gguf" })));
  const tagViews: TagView[] = parsed.map((r) => {
    const layer = r.manifest?.layers.find((l) => l.mediaType === MediaType.model);
    const f = layer ? facts.get(layer.digest) : undefined;
    return {
      name: r.name,
      digest: r.digest,
      updatedAt: new Date(r.updatedAt),
      size: r.manifest ? manifestSize(r.manifest) : r.content.length,
      manifest: r.manifest,
      manifestError: r.manifestError,
      model: layer ? { digest: layer.digest, size: layer.size, facts: f?.kind === "gguf" ? f.facts : null, error: f?.error ?? null } : null,
    };
  });
  const [last] = await db
    .select({ tag: pushes.tag, manifestDigest: pushes.manifestDigest, account: pushes.account, keyFingerprint: pushes.keyFingerprint, pushedAt: pushes.pushedAt })
    .from(pushes)
    .where(eq(pushes.repositoryId, repo.id))
    .orderBy(desc(pushes.pushedAt), desc(pushes.id))
    .limit(1);
  return { namespace, repository: { ...repo, createdAt: new Date(repo.createdAt) }, role, tags: tagViews, lastPush: last ? { ...last, pushedAt: new Date(last.pushedAt) } : undefined };
}

/** The tag the model page describes: `latest` when there is one, else the most recently updated. */
export function defaultTag(view: ModelView): TagView | undefined {
  return view.tags.find((t) => t.name === "latest") ?? view.tags[0];
}

/** Reads (through the facts cache) the text layers of a tag. */
export async function tagContents(db: Database, store: BlobStore, manifest: Manifest): Promise<TagContents> {
  const textTypes = new Set<string>([MediaType.template, MediaType.prompt, MediaType.system, MediaType.params, MediaType.license, MediaType.messages]);
  const textLayers = manifest.layers.filter((l) => textTypes.has(l.mediaType));
  const facts = await blobFactsFor(db, store, textLayers.map((l): BlobRef => ({ digest: l.digest, size: l.size, kind: "text" })));
  const text = (l: Descriptor): LayerText => {
    const f = facts.get(l.digest);
    const t = f?.kind === "text" ? (f.facts as TextFacts | null) : null;
    return { digest: l.digest, size: l.size, text: t?.text ?? null, truncated: t?.truncated ?? false };
  };
  const last = (...types: string[]): LayerText | null => {
    const found = manifest.layers.filter((l) => types.includes(l.mediaType)).at(-1);
    return found ? text(found) : null;
  };
  return {
    template: last(MediaType.template, MediaType.prompt),
    system: last(MediaType.system),
    params: last(MediaType.params),
    licenses: manifest.layers.filter((l) => l.mediaType === MediaType.license).map(text),
    messages: last(MediaType.messages),
    adapters: manifest.layers.filter((l) => l.mediaType === MediaType.adapter),
    projectors: manifest.layers.filter((l) => l.mediaType === MediaType.projector),
  };
}

/** Reads the header facts and small layers of a freshly pushed manifest, so its pages are fast at once. */
export async function warmFacts(db: Database, store: BlobStore, repositoryId: number, manifestDigest: string): Promise<void> {
  const [row] = await db.select({ content: manifests.content }).from(manifests).where(and(eq(manifests.repositoryId, repositoryId), eq(manifests.digest, manifestDigest)));
  if (!row) return;
  const manifest = parseManifest(row.content);
  const model = manifest.layers.find((l) => l.mediaType === MediaType.model);
  if (model) await blobFactsFor(db, store, [{ digest: model.digest, size: model.size, kind: "gguf" }]);
  await tagContents(db, store, manifest);
}

export async function recordPush(db: Database, push: { repositoryId: number; tag: string | null; manifestDigest: string; account: string | null; keyFingerprint: string | null }): Promise<void> {
  await db.insert(pushes).values(push);
}

// ---- changes made from the web ------------------------------------------------------------------

async function requireOwner(db: Database, viewer: Account | undefined, namespace: Account, what: string): Promise<void> {
  if ((await roleOn(db, viewer, namespace)) !== "owner") throw new AdminError(404, `only owners of ${namespace.name} can ${what}`);
}

async function ownedRepository(db: Database, viewer: Account | undefined, ns: string, model: string): Promise<{ namespace: Account; id: number }> {
  const namespace = await findAccount(db, ns);
  const [repo] = namespace
    ? await db.select({ id: repositories.id }).from(repositories).where(and(eq(repositories.namespaceId, namespace.id), eq(repositories.name, model.toLowerCase())))
    : [];
  if (!namespace || !repo) throw new AdminError(404, `model ${ns}/${model} does not exist`);
  await requireOwner(db, viewer, namespace, "change this model");
  return { namespace, id: repo.id };
}

export async function updateModelSettings(
  db: Database,
  viewer: Account | undefined,
  ns: string,
  model: string,
  change: { description?: string; visibility?: string },
): Promise<void> {
  const { id } = await ownedRepository(db, viewer, ns, model);
  const set: { description?: string; visibility?: "public" | "private" } = {};
  if (change.description !== undefined) {
    const d = change.description.replace(/\r\n?/g, "\n");
    if (d.length > MAX_DESCRIPTION_CHARS) throw new AdminError(400, `description: at most ${MAX_DESCRIPTION_CHARS} characters, got ${d.length}`);
    set.description = d;
  }
  if (change.visibility !== undefined) {
    if (change.visibility !== "public" && change.visibility !== "private") throw new AdminError(400, `visibility: expected public or private, got ${JSON.stringify(change.visibility.slice(0, 40))}`);
    set.visibility = change.visibility;
  }
  if (Object.keys(set).length) await db.update(repositories).set(set).where(eq(repositories.id, id));
}

async function orgFor(db: Database, viewer: Account | undefined, org: string): Promise<Account> {
  const namespace = await findAccount(db, org);
  if (!namespace || namespace.kind !== "org") throw new AdminError(404, `organisation ${org} does not exist`);
  await requireOwner(db, viewer, namespace, "manage its members");
  return namespace;
}

/** Adds a member or changes a role; an organisation keeps at least one owner. */
export async function setMemberRole(db: Database, viewer: Account | undefined, org: string, user: string, role: string): Promise<void> {
  if (!isRole(role)) throw new AdminError(400, `role: expected reader, writer or owner, got ${JSON.stringify(role.slice(0, 40))}`);
  const namespace = await orgFor(db, viewer, org);
  const target = await findAccount(db, user.trim());
  if (!target || target.kind !== "user") throw new AdminError(404, `user ${JSON.stringify(user.trim().slice(0, 80))} does not exist`);
  await db.transaction(async (tx) => {
    await tx
      .insert(members)
      .values({ namespaceId: namespace.id, accountId: target.id, role })
      .onConflictDoUpdate({ target: [members.namespaceId, members.accountId], set: { role } });
    await keepAnOwner(tx, namespace);
  });
}

export async function removeMember(db: Database, viewer: Account | undefined, org: string, user: string): Promise<void> {
  const namespace = await orgFor(db, viewer, org);
  const target = await findAccount(db, user);
  if (!target) throw new AdminError(404, `user ${JSON.stringify(user.slice(0, 80))} does not exist`);
  await db.transaction(async (tx) => {
    const gone = await tx.delete(members).where(and(eq(members.namespaceId, namespace.id), eq(members.accountId, target.id))).returning({ id: members.accountId });
    if (gone.length === 0) throw new AdminError(404, `${target.name} is not a member of ${namespace.name}`);
    await keepAnOwner(tx, namespace);
  });
}

async function keepAnOwner(db: Database, org: Account): Promise<void> {
  const owners = await db.select({ id: members.accountId }).from(members).where(and(eq(members.namespaceId, org.id), eq(members.role, "owner")));
  if (owners.length === 0) throw new AdminError(409, `${org.name} must keep at least one owner`);
}
