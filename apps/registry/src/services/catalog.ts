// The web catalog's view of the registry: models a visitor may see (recently updated, by namespace,
// by search over names and descriptions), a model's tags with what their layers hold, who pushed
// last, and the changes owners make from the web (description, visibility, organisation members).

import { and, asc, desc, eq, inArray, isNotNull, sql, type SQL } from "drizzle-orm";
import { parseManifest, MediaType, manifestSize, type Descriptor, type Manifest } from "@corral/shared/manifest";
import type { Database } from "../db/open.ts";
import { accounts, blobFacts, manifestBlobs, manifests, members, pullCounts, pushes, repositories, tags } from "../db/schema.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { isRole, type Role } from "../auth/scope.ts";
import { AdminError } from "../errors.ts";
import { findAccount, roleOn, type Account } from "./accounts.ts";
import { writeMembership } from "./membership.ts";
import { readableBy } from "./repositories.ts";
import { signersOf } from "./signatures.ts";
import { blobFactsFor, type BlobRef, type GGUFFacts, type TextFacts } from "./model-facts.ts";
import type { CachedDatabase } from "./read-cache.ts";
import type { MirrorOrigin } from "../mirror/manifests.ts";
import { tagCapabilities, templateLayer } from "./model-capabilities.ts";
import { pullTotals, type PullCounter, type PullTotals } from "./pull-counts.ts";

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
  /** Pulls of all its tags. */
  pulls: number;
  /** Its default tag, as far as the catalog knows it without reading the blob store. */
  card: ModelCard | null;
  /** Set for a model of a mirrored namespace (routes/web.ts). */
  mirror?: MirrorOrigin | undefined;
}

/** What a list shows of a model's default tag (`latest`, else the most recently updated). */
export interface ModelCard {
  tag: string;
  /** Sum of the layers and the config; null when the manifest is too large to read for a list. */
  size: number | null;
  quantization: string | null;
  parameterCount: number | null;
  capabilities: string[];
}

interface ListOptions {
  /** Free text: words match names and descriptions by prefix; the whole text matches `ns/model` as a substring. */
  query?: string;
  namespaceId?: number;
  /** Leave out repositories without tags. */
  taggedOnly?: boolean;
  limit: number;
  /** Adds the pulls this process counted but has not written yet. */
  pulls?: PullCounter | undefined;
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

/**
 * Search ranks: the whole query as the model's name (or `ns/model`), as the start of it, inside
 * it, the query's words among the name's words, and then matches in the description only.
 */
export const SEARCH_TIERS = ["exact name", "name prefix", "name contains", "name words", "description"] as const;

/**
 * Models the account may see, newest first; for a query, by search tier (SEARCH_TIERS), then pulls,
 * then recency. The query is at most 200 characters and 8 words, and every list has a limit.
 */
export async function listModels(db: Database, account: Account | undefined, opts: ListOptions): Promise<ModelSummary[]> {
  const updatedAt = sql<Date | null>`(select max(${tags.updatedAt}) from ${tags} where ${tags.repositoryId} = ${repositories.id})`;
  const tagCount = sql<number>`(select count(*)::int from ${tags} where ${tags.repositoryId} = ${repositories.id})`;
  const pulls = sql<number>`(select coalesce(sum(${pullCounts.count}), 0)::bigint from ${pullCounts} where ${pullCounts.repositoryId} = ${repositories.id})`;
  const conds: Array<SQL | undefined> = [readableBy(db, account)];
  if (opts.namespaceId !== undefined) conds.push(eq(repositories.namespaceId, opts.namespaceId));
  if (opts.taggedOnly) conds.push(sql`exists (select 1 from ${tags} where ${tags.repositoryId} = ${repositories.id})`);
  const order: SQL[] = [];
  const q = opts.query?.trim().slice(0, 200).toLowerCase();
  if (q) {
    // Pulls order the results: this process's unwritten counts are written first (one statement,
    // only when there are any), so a search sees them as its pages do.
    await opts.pulls?.flush();
    const tsq = toTsQuery(q);
    const path = sql`${accounts.name} || '/' || ${repositories.name}`;
    const contains = likePattern(q);
    const byText = tsq ? sql`${searchVector} @@ to_tsquery('simple', ${tsq})` : sql`false`;
    const nameWords = tsq ? sql`to_tsvector('simple', ${repositories.name}) @@ to_tsquery('simple', ${tsq})` : sql`false`;
    conds.push(sql`(${byText} or ${path} ilike ${contains})`);
    const prefix = `${contains.slice(1)}`;
    order.push(sql`(case when ${repositories.name} = ${q} or ${path} = ${q} then 0
      when ${repositories.name} like ${prefix} or ${path} like ${prefix} then 1
      when ${path} like ${contains} then 2
      when ${nameWords} then 3
      else 4 end)`);
    order.push(sql`${pulls} desc`);
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
    .orderBy(...order, sql`${updatedAt} desc nulls last`, asc(accounts.name), asc(repositories.name))
    .limit(opts.limit);
  const ids = rows.map((r) => r.id);
  const [facts, cards, counts] = await Promise.all([factsByRepository(db, ids), cardsByRepository(db, ids), pullTotals(db, ids, opts.pulls)]);
  return rows.map((r) => ({
    namespace: r.namespace,
    name: r.name,
    visibility: r.visibility,
    description: r.description,
    tagCount: Number(r.tagCount),
    updatedAt: r.updatedAt ? new Date(r.updatedAt) : null,
    architectures: [...(facts.get(r.id)?.architectures ?? [])],
    parameterCounts: [...(facts.get(r.id)?.parameterCounts ?? [])].sort((a, b) => a - b),
    pulls: counts.get(r.id)?.total ?? 0,
    card: cards.get(r.id) ?? null,
  }));
}

/** Manifests larger than this (real ones are a few KB) get no size or badges in lists. */
const CARD_MANIFEST_BYTES = 64 * 1024;
/** Template text a list reads per layer for its badges. */
const CARD_TEMPLATE_CHARS = 64 * 1024;
/** Cards remembered by manifest digest (content-addressed: never stale); the oldest is forgotten first. */
const MAX_REMEMBERED_CARDS = 10_000;
const rememberedCards = new Map<string, Omit<ModelCard, "tag">>();

/**
 * The card of each repository's default tag, from the manifest and the facts already kept (never
 * reads the blob store): one query for the tags, one for the manifests not seen before, one for
 * their facts.
 */
async function cardsByRepository(db: Database, ids: number[]): Promise<Map<number, ModelCard>> {
  const out = new Map<number, ModelCard>();
  if (ids.length === 0) return out;
  const defaults = await db
    .selectDistinctOn([tags.repositoryId], { repositoryId: tags.repositoryId, name: tags.name, digest: tags.manifestDigest })
    .from(tags)
    .where(inArray(tags.repositoryId, ids))
    .orderBy(tags.repositoryId, sql`(${tags.name} = 'latest') desc`, desc(tags.updatedAt), asc(tags.name));
  const unknown = defaults.filter((d) => !rememberedCards.has(d.digest));
  const contents = unknown.length
    ? await db
        .select({ digest: manifests.digest, content: manifests.content })
        .from(manifests)
        .where(
          and(
            sql`(${manifests.repositoryId}, ${manifests.digest}) in (${sql.join(
              unknown.map((d) => sql`(${d.repositoryId}::int, ${d.digest}::text)`),
              sql`, `,
            )})`,
            sql`octet_length(${manifests.content}) <= ${CARD_MANIFEST_BYTES}`,
          ),
        )
    : [];
  const parsed = new Map<string, Manifest>();
  for (const m of contents) {
    try {
      parsed.set(m.digest, parseManifest(m.content));
    } catch {
      // An unreadable manifest gets a card without facts.
    }
  }
  const wanted = [...parsed.values()].flatMap((m) => [m.layers.find((l) => l.mediaType === MediaType.model)?.digest, templateLayer(m)?.digest]).filter((d): d is string => d !== undefined);
  const known = wanted.length
    ? await db
        .select({ digest: blobFacts.digest, kind: blobFacts.kind, facts: sql<unknown>`case when ${blobFacts.kind} = 'gguf' then ${blobFacts.facts} end`, text: sql<string | null>`left(${blobFacts.facts}->>'text', ${CARD_TEMPLATE_CHARS})` })
        .from(blobFacts)
        .where(inArray(blobFacts.digest, [...new Set(wanted)]))
    : [];
  const byDigest = new Map(known.map((k) => [k.digest, k]));
  const fresh = new Map<string, Omit<ModelCard, "tag">>();
  for (const [digest, manifest] of parsed) {
    const modelLayer = manifest.layers.find((l) => l.mediaType === MediaType.model);
    const template = templateLayer(manifest);
    const model = modelLayer ? (byDigest.get(modelLayer.digest)?.facts as GGUFFacts | null | undefined) : undefined;
    const text = template ? byDigest.get(template.digest)?.text ?? undefined : undefined;
    const card = {
      size: manifestSize(manifest),
      quantization: model?.quantization ?? null,
      parameterCount: model?.parameterCount ? model.parameterCount : null,
      capabilities: tagCapabilities(manifest, { model, template: text }),
    };
    // Remembered only once everything it depends on has been read (and kept) by a page view or push.
    const complete = (!modelLayer || model?.traits) && (!template || text !== undefined);
    if (complete) {
      if (rememberedCards.size >= MAX_REMEMBERED_CARDS) rememberedCards.delete(rememberedCards.keys().next().value!);
      rememberedCards.set(digest, card);
    }
    fresh.set(digest, card);
  }
  for (const d of defaults) {
    const card = rememberedCards.get(d.digest) ?? fresh.get(d.digest) ?? { size: null, quantization: null, parameterCount: null, capabilities: [] };
    out.set(d.repositoryId, { tag: d.name, ...card });
  }
  return out;
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

export async function namespaceView(db: Database, viewer: Account | undefined, name: string, pulls?: PullCounter): Promise<NamespaceView | undefined> {
  const account = await findAccount(db, name);
  if (!account) return undefined;
  const role = await roleOn(db, viewer, account);
  const models = await listModels(db, viewer, { namespaceId: account.id, limit: 500, pulls });
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

/**
 * Text of one layer shown inline; longer layers show their start and link to the whole blob.
 * A manifest may name big text layers, many of them, or one of them many times: a page shows
 * each distinct layer once and at most PAGE_TEXT_BYTES of text, so its size follows what is
 * distinct, not what the manifest repeats.
 */
export const INLINE_TEXT_BYTES = 64 * 1024;
/** Text one page shows inline, all layers together (the tag page shows it twice: rows and Modelfile). */
export const PAGE_TEXT_BYTES = 256 * 1024;
/** Text layers one page shows inline; the rest are named by digest on the tag page. */
export const MAX_TEXT_LAYERS_SHOWN = 32;

export interface LayerText {
  digest: string;
  size: number;
  /** What is shown: the start of the layer, at most INLINE_TEXT_BYTES; null when unread or unreadable. */
  text: string | null;
  /** `text` is only the start of the layer. */
  truncated: boolean;
  /** UTF-8 bytes of `text`. */
  shownBytes: number;
  /** Not read at all: the page already shows as much text as a page may. */
  withheld: boolean;
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
  /** Accounts whose still-registered keys signed the manifest (docs/protocol.md, "Model signatures"). */
  signedBy: Array<{ account: string; fingerprint: string }>;
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
  /** Pulls of the model and of each tag. */
  pulls: PullTotals;
  /** Set for a model of a mirrored namespace (routes/web.ts). */
  mirror?: MirrorOrigin | undefined;
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

/** A model by its namespace and name, as one account (or an anonymous visitor) asks for it. */
export interface ModelLookup {
  viewer: Account | undefined;
  ns: string;
  model: string;
}

/** The model if the viewer may see it: a private model is as absent as a missing one. */
export async function modelView(db: Database, store: BlobStore, lookup: ModelLookup, counter?: PullCounter): Promise<ModelView | undefined> {
  const { viewer, ns, model } = lookup;
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
    .select({ name: tags.name, digest: tags.manifestDigest, updatedAt: tags.updatedAt })
    .from(tags)
    .innerJoin(manifests, and(eq(manifests.repositoryId, tags.repositoryId), eq(manifests.digest, tags.manifestDigest)))
    .where(eq(tags.repositoryId, repo.id))
    .orderBy(desc(tags.updatedAt), asc(tags.name));
  // Many tags may name one manifest: each distinct manifest is read and parsed once.
  const digests = [...new Set(rows.map((r) => r.digest))];
  const contents = digests.length
    ? await db
        .select({ digest: manifests.digest, content: manifests.content })
        .from(manifests)
        .where(and(eq(manifests.repositoryId, repo.id), inArray(manifests.digest, digests)))
    : [];
  const byDigest = new Map<string, { length: number; manifest: Manifest | null; manifestError: string | null }>();
  for (const m of contents) {
    try {
      byDigest.set(m.digest, { length: m.content.length, manifest: parseManifest(m.content), manifestError: null });
    } catch (e) {
      byDigest.set(m.digest, { length: m.content.length, manifest: null, manifestError: (e as Error).message });
    }
  }
  const parsed = rows.flatMap((r) => {
    const m = byDigest.get(r.digest);
    return m ? [{ ...r, ...m }] : [];
  });
  const modelLayers = parsed.flatMap((r) => (r.manifest ? r.manifest.layers.filter((l) => l.mediaType === MediaType.model).slice(0, 1) : []));
  const facts = await blobFactsFor(db, store, modelLayers.map((l): BlobRef => ({ digest: l.digest, size: l.size, kind: "gguf" })));
  const signers = await signersOf(db, repo.id, digests);
  const tagViews: TagView[] = parsed.map((r) => {
    const layer = r.manifest?.layers.find((l) => l.mediaType === MediaType.model);
    const f = layer ? facts.get(layer.digest) : undefined;
    return {
      name: r.name,
      digest: r.digest,
      updatedAt: new Date(r.updatedAt),
      size: r.manifest ? manifestSize(r.manifest) : r.length,
      manifest: r.manifest,
      manifestError: r.manifestError,
      model: layer ? { digest: layer.digest, size: layer.size, facts: f?.kind === "gguf" ? f.facts : null, error: f?.error ?? null } : null,
      signedBy: signers.get(r.digest) ?? [],
    };
  });
  const [last] = await db
    .select({ tag: pushes.tag, manifestDigest: pushes.manifestDigest, account: pushes.account, keyFingerprint: pushes.keyFingerprint, pushedAt: pushes.pushedAt })
    .from(pushes)
    .where(eq(pushes.repositoryId, repo.id))
    .orderBy(desc(pushes.pushedAt), desc(pushes.id))
    .limit(1);
  const pulls = (await pullTotals(db, [repo.id], counter)).get(repo.id) ?? { total: 0, byTag: new Map() };
  return { namespace, repository: { ...repo, createdAt: new Date(repo.createdAt) }, role, tags: tagViews, lastPush: last ? { ...last, pushedAt: new Date(last.pushedAt) } : undefined, pulls };
}

/** The capability badges of a tag a page shows, from its manifest, model facts and template text. */
export function tagBadges(tag: TagView, contents: TagContents | undefined): string[] {
  if (!tag.manifest) return [];
  const template = contents?.template?.text ?? undefined;
  return tagCapabilities(tag.manifest, { model: tag.model?.facts, template });
}

/** The tag the model page describes: `latest` when there is one, else the most recently updated. */
export function defaultTag(view: ModelView): TagView | undefined {
  return view.tags.find((t) => t.name === "latest") ?? view.tags[0];
}

/** Each digest once, in the order of first appearance. */
function distinct(layers: Descriptor[]): Descriptor[] {
  return [...new Map(layers.map((l) => [l.digest, l])).values()];
}

/** The first `max` bytes of `text` in UTF-8, cut at a character boundary. */
function utf8Prefix(text: string, max: number): string {
  if (text.length <= max / 3) return text;
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= max) return text;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

/**
 * Reads (through the facts cache) the text layers of a tag: each distinct layer once, in the
 * order the page shows them, while the page's text budget lasts. The budget is spent by the
 * sizes the manifest declares (checked against the blobs at push), so layers past it are
 * not even read.
 */
export async function tagContents(db: Database, store: BlobStore, manifest: Manifest): Promise<TagContents> {
  const last = (...types: string[]): Descriptor | undefined => manifest.layers.filter((l) => types.includes(l.mediaType)).at(-1);
  const single = {
    params: last(MediaType.params),
    template: last(MediaType.template, MediaType.prompt),
    system: last(MediaType.system),
    messages: last(MediaType.messages),
  };
  const licenses = distinct(manifest.layers.filter((l) => l.mediaType === MediaType.license));
  let budget = PAGE_TEXT_BYTES;
  let layersShown = 0;
  const inline = new Set<string>();
  for (const l of [single.params, single.template, single.system, single.messages, ...licenses]) {
    if (!l || inline.has(l.digest)) continue;
    const cost = Math.min(l.size, INLINE_TEXT_BYTES);
    if (cost > budget || layersShown >= MAX_TEXT_LAYERS_SHOWN) continue;
    budget -= cost;
    layersShown++;
    inline.add(l.digest);
  }
  const read = distinct(manifest.layers.filter((l) => inline.has(l.digest)));
  const facts = await blobFactsFor(db, store, read.map((l): BlobRef => ({ digest: l.digest, size: l.size, kind: "text" })));
  const text = (l: Descriptor): LayerText => {
    if (!inline.has(l.digest)) return { digest: l.digest, size: l.size, text: null, truncated: false, shownBytes: 0, withheld: true };
    const f = facts.get(l.digest);
    const t = f?.kind === "text" ? (f.facts as TextFacts | null) : null;
    if (!t) return { digest: l.digest, size: l.size, text: null, truncated: false, shownBytes: 0, withheld: false };
    const shown = utf8Prefix(t.text, INLINE_TEXT_BYTES);
    return { digest: l.digest, size: l.size, text: shown, truncated: t.truncated || shown.length < t.text.length, shownBytes: Buffer.byteLength(shown), withheld: false };
  };
  const maybe = (l: Descriptor | undefined): LayerText | null => (l ? text(l) : null);
  return {
    template: maybe(single.template),
    system: maybe(single.system),
    params: maybe(single.params),
    licenses: licenses.map(text),
    messages: maybe(single.messages),
    adapters: distinct(manifest.layers.filter((l) => l.mediaType === MediaType.adapter)),
    projectors: distinct(manifest.layers.filter((l) => l.mediaType === MediaType.projector)),
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

async function ownedRepository(db: Database, viewer: Account | undefined, ns: string, model: string): Promise<{ namespace: Account; id: number }> {
  const namespace = await findAccount(db, ns);
  const [repo] = namespace
    ? await db
        .select({ id: repositories.id, visibility: repositories.visibility })
        .from(repositories)
        .where(and(eq(repositories.namespaceId, namespace.id), eq(repositories.name, model.toLowerCase())))
    : [];
  const role = namespace && repo ? await roleOn(db, viewer, namespace) : undefined;
  // A model the viewer cannot see answers exactly as a missing one does, as its pages do.
  if (!namespace || !repo || (repo.visibility !== "public" && !role)) throw new AdminError("NOT_FOUND", `there is no model ${ns}/${model} here that you can see`);
  if (role !== "owner") throw new AdminError("NOT_FOUND", `only owners of ${namespace.name} can change this model`);
  return { namespace, id: repo.id };
}

export async function updateModelSettings({ db, reads }: CachedDatabase, lookup: ModelLookup, change: { description?: string; visibility?: string }): Promise<void> {
  const { id } = await ownedRepository(db, lookup.viewer, lookup.ns, lookup.model);
  const set: { description?: string; visibility?: "public" | "private" } = {};
  if (change.description !== undefined) {
    const d = change.description.replace(/\r\n?/g, "\n");
    if (d.length > MAX_DESCRIPTION_CHARS) throw new AdminError("INVALID_REQUEST", `description: at most ${MAX_DESCRIPTION_CHARS} characters, got ${d.length}`);
    set.description = d;
  }
  if (change.visibility !== undefined) {
    if (change.visibility !== "public" && change.visibility !== "private") throw new AdminError("INVALID_REQUEST", `visibility: expected public or private, got ${JSON.stringify(change.visibility.slice(0, 40))}`);
    set.visibility = change.visibility;
  }
  if (Object.keys(set).length) await reads.changing([repositories], () => db.update(repositories).set(set).where(eq(repositories.id, id)));
}

async function orgFor(db: Database, viewer: Account | undefined, org: string): Promise<Account> {
  const namespace = await findAccount(db, org);
  const role = namespace?.kind === "org" ? await roleOn(db, viewer, namespace) : undefined;
  // Only members see an organisation's members: to anyone else it answers as a missing one does.
  if (!namespace || namespace.kind !== "org" || !role) throw new AdminError("NOT_FOUND", `there is no organisation ${org} here whose members you can see`);
  if (role !== "owner") throw new AdminError("NOT_FOUND", `only owners of ${namespace.name} can manage its members`);
  return namespace;
}

/** Adds a member or changes a role; an organisation keeps at least one owner. */
export async function setMemberRole(db: Database, viewer: Account | undefined, membership: { org: string; user: string; role: string }): Promise<void> {
  const { org, user, role } = membership;
  if (!isRole(role)) throw new AdminError("INVALID_REQUEST", `role: expected reader, writer or owner, got ${JSON.stringify(role.slice(0, 40))}`);
  const namespace = await orgFor(db, viewer, org);
  const target = await findAccount(db, user.trim());
  if (!target || target.kind !== "user") throw new AdminError("NOT_FOUND", `user ${JSON.stringify(user.trim().slice(0, 80))} does not exist`);
  await writeMembership(db, namespace, target, role);
}

export async function removeMember(db: Database, viewer: Account | undefined, org: string, user: string): Promise<void> {
  const namespace = await orgFor(db, viewer, org);
  const target = await findAccount(db, user);
  if (!target) throw new AdminError("NOT_FOUND", `user ${JSON.stringify(user.slice(0, 80))} does not exist`);
  await writeMembership(db, namespace, target, undefined);
}
