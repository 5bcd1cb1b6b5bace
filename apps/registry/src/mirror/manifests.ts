// Manifests of mirrored namespaces (docs/protocol.md, "Mirrors"): served from the registry's own
// tables while fresh, fetched from the upstream on a miss or once REGISTRY_MIRROR_TTL has passed,
// verified (digest, size, the registry's own manifest validation) before anything is stored, and
// served stale when the upstream cannot be reached. Once every blob a mirrored manifest names is in
// the store, it is stored as a pushed manifest is, so the catalog, tag lists and garbage collection
// see mirrored models like any other.

import { and, eq, inArray, sql } from "drizzle-orm";
import { sha256Bytes } from "@corral/shared/digest";
import type { MirrorConfig } from "../config.ts";
import { accounts, blobs, mirrorManifests, mirrorTags, repositories, repositoryBlobs, tags } from "../db/schema.ts";
import { RegistryError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import { MAX_MANIFEST_BYTES, getManifest, putManifest, validateManifest, type StoredManifest, type ValidManifest } from "../services/manifests.ts";
import type { Reference, RepoName } from "../services/names.ts";
import { ensureRepository, findNamespaceAndRepository, type Repository } from "../services/repositories.ts";
import { UpstreamError } from "./upstream-client.ts";

/** How a manifest was answered, sent to clients as `Corral-Mirror`. */
export type MirrorOutcome = "hit" | "miss" | "refreshed" | "stale";

export interface MirroredManifest {
  manifest: StoredManifest;
  outcome: MirrorOutcome;
}

type Fetched = StoredManifest | undefined;

/**
 * A manifest asked for, and who asks: `client` (an address) is charged for each upstream lookup of
 * a name this registry has no copy of; none for the registry's own commands.
 */
export interface ManifestAsk {
  name: RepoName;
  ref: Reference;
  client?: string | undefined;
}

/**
 * The manifest `ref` of mirrored repository `name`, or undefined when neither this registry nor
 * the upstream has it. Throws UPSTREAM_FAILED when the upstream is needed, fails, and nothing
 * cached can stand in, and TOOMANYREQUESTS when the client has asked for too many names it has no
 * copy of this minute.
 */
export async function mirroredManifest(reg: Registry, mirror: MirrorConfig, ask: ManifestAsk): Promise<MirroredManifest | undefined> {
  const { name, ref } = ask;
  const { repository } = await findNamespaceAndRepository(reg, name);
  if (ref.kind === "digest") {
    // A digest names the same bytes for ever: whatever is here is fresh.
    if (repository) {
      const here = (await cachedByDigest(reg, repository.id, ref.digest)) ?? (await getManifest(reg, repository.id, ref));
      if (here) return { manifest: here, outcome: "hit" };
    }
    const fetched = await lookUp(reg, mirror, ask);
    return fetched && { manifest: fetched, outcome: "miss" };
  }
  const cached = repository ? await cachedTag(reg, repository.id, ref.tag) : undefined;
  if (cached && Date.now() - cached.refreshedAt.getTime() < reg.config.mirrorTTLSeconds * 1000) {
    await promoteIfComplete(reg, repository!.id, cached.manifest.digest, ref.tag).catch((e: unknown) => logPromotion(reg, name, e));
    return { manifest: cached.manifest, outcome: "hit" };
  }
  let fetched: Fetched;
  try {
    // Refreshing a tag this registry holds is bounded by the TTL; only names new to it are charged.
    fetched = await lookUp(reg, mirror, cached ? { name, ref } : ask);
  } catch (e) {
    if (!(e instanceof RegistryError && e.code === "UPSTREAM_FAILED") || !cached) throw e;
    reg.mirror.log.warn(`mirror: serving the cached ${name.path}:${ref.tag}; upstream ${mirror.host} unreachable`, { repository: name.path, tag: ref.tag, upstream: mirror.upstream, error: e.message });
    return { manifest: cached.manifest, outcome: "stale" };
  }
  if (!fetched) {
    // The upstream no longer has the tag: neither does the mirror.
    if (repository) await forgetTag(reg, repository.id, ref.tag);
    return undefined;
  }
  return { manifest: fetched, outcome: cached ? "refreshed" : "miss" };
}

/**
 * One upstream lookup per name at a time; concurrent first pulls share it. A name the upstream
 * did not have is answered as missing for REGISTRY_MIRROR_MISS_TTL without asking again, and a
 * client is charged for each lookup it causes (REGISTRY_MIRROR_LOOKUP_RATE): otherwise anyone who
 * may pull could make the registry send the upstream a request per name it makes up.
 */
async function lookUp(reg: Registry, mirror: MirrorConfig, { name, ref, client }: ManifestAsk): Promise<Fetched> {
  const key = ref.kind === "tag" ? `${name.path}:${ref.tag}` : `${name.path}@${ref.digest}`;
  if (reg.mirror.knownMissing(key)) return undefined;
  if (client !== undefined) {
    const wait = reg.mirror.lookupBuckets.take(client);
    if (wait) {
      throw new RegistryError("TOOMANYREQUESTS", `too many names this registry has no copy of were asked for from this address; try again in ${wait}s`).withHeaders({
        "Retry-After": String(wait),
      });
    }
  }
  const fetched = (await reg.mirror.lookups.run(key, () => fetchAndStore(reg, mirror, name, ref))) as Fetched;
  if (!fetched) reg.mirror.rememberMissing(key, reg.config.mirrorMissTTLSeconds);
  return fetched;
}

async function fetchAndStore(reg: Registry, mirror: MirrorConfig, name: RepoName, ref: Reference): Promise<Fetched> {
  const reference = ref.kind === "tag" ? ref.tag : ref.digest;
  let valid: ValidManifest;
  let bytes: Buffer;
  try {
    const up = await reg.mirror.client(mirror).manifest(name.path, reference, MAX_MANIFEST_BYTES);
    if (!up) return undefined;
    bytes = up.bytes;
    const digest = sha256Bytes(bytes);
    if (ref.kind === "digest" && digest !== ref.digest) throw new UpstreamError(`the upstream sent manifest ${name.path}@${ref.digest} with bytes whose digest is ${digest}`);
    if (up.digest && up.digest !== digest) throw new UpstreamError(`the upstream's manifest ${name.path}:${reference} says its digest is ${up.digest.slice(0, 80)} but its bytes have ${digest}`);
    try {
      valid = validateManifest(bytes, up.contentType);
    } catch (e) {
      if (e instanceof RegistryError) throw new UpstreamError(`the upstream's manifest ${name.path}:${reference} is not usable: ${e.message}`);
      throw e;
    }
  } catch (e) {
    if (e instanceof UpstreamError) {
      throw new RegistryError("UPSTREAM_FAILED", `${name.path}:${reference} could not be fetched from ${mirror.host}: ${e.message}; try again later`);
    }
    throw e;
  }
  const repo = await ensureMirrorRepository(reg, mirror, name);
  const named = [...(valid.manifest.config.digest ? [valid.manifest.config] : []), ...valid.manifest.layers].map((d) => ({ digest: d.digest, size: d.size }));
  await reg.reads.changing([mirrorManifests, mirrorTags], () =>
    reg.db.transaction(async (tx) => {
      await tx
        .insert(mirrorManifests)
        .values({ repositoryId: repo.id, digest: valid.digest, mediaType: valid.mediaType, content: bytes, blobs: named, upstream: mirror.upstream })
        .onConflictDoNothing();
      if (ref.kind === "tag") {
        await tx
          .insert(mirrorTags)
          .values({ repositoryId: repo.id, name: ref.tag, manifestDigest: valid.digest, upstream: mirror.upstream })
          .onConflictDoUpdate({ target: [mirrorTags.repositoryId, mirrorTags.name], set: { manifestDigest: valid.digest, upstream: mirror.upstream, refreshedAt: sql`now()` } });
      }
    }),
  );
  await promoteIfComplete(reg, repo.id, valid.digest, ref.kind === "tag" ? ref.tag : undefined).catch((e: unknown) => logPromotion(reg, name, e));
  return { digest: valid.digest, mediaType: valid.mediaType, content: bytes };
}

/**
 * The repository a first fetch creates, in the mirrored namespace; the namespace itself is made an
 * organisation without members when no account holds the name (docs/protocol.md, "Mirrors").
 */
async function ensureMirrorRepository(reg: Registry, mirror: MirrorConfig, name: RepoName): Promise<Repository> {
  const found = await findNamespaceAndRepository(reg, name);
  if (found.repository) return found.repository;
  let namespace = found.namespace;
  if (!namespace) {
    await reg.reads.changing([accounts], () => reg.db.insert(accounts).values({ name: mirror.namespace, kind: "org" }).onConflictDoNothing());
    ({ namespace } = await findNamespaceAndRepository(reg, name));
    if (!namespace) throw new Error(`the namespace ${mirror.namespace} could not be created`);
  }
  return ensureRepository(reg, namespace, name.model, reg.config.mirrorVisibility);
}

async function cachedTag(reg: Registry, repositoryId: number, tag: string): Promise<{ manifest: StoredManifest; refreshedAt: Date } | undefined> {
  const [row] = await reg.db
    .select({ digest: mirrorManifests.digest, mediaType: mirrorManifests.mediaType, content: mirrorManifests.content, refreshedAt: mirrorTags.refreshedAt })
    .from(mirrorTags)
    .innerJoin(mirrorManifests, and(eq(mirrorManifests.repositoryId, mirrorTags.repositoryId), eq(mirrorManifests.digest, mirrorTags.manifestDigest)))
    .where(and(eq(mirrorTags.repositoryId, repositoryId), eq(mirrorTags.name, tag)));
  return row && { manifest: { digest: row.digest, mediaType: row.mediaType, content: row.content }, refreshedAt: row.refreshedAt };
}

async function cachedByDigest(reg: Registry, repositoryId: number, digest: string): Promise<StoredManifest | undefined> {
  const [row] = await reg.db
    .select({ digest: mirrorManifests.digest, mediaType: mirrorManifests.mediaType, content: mirrorManifests.content })
    .from(mirrorManifests)
    .where(and(eq(mirrorManifests.repositoryId, repositoryId), eq(mirrorManifests.digest, digest)));
  return row;
}

async function forgetTag(reg: Registry, repositoryId: number, tag: string): Promise<void> {
  await reg.reads.changing([mirrorTags, tags], async () => {
    await reg.db.delete(mirrorTags).where(and(eq(mirrorTags.repositoryId, repositoryId), eq(mirrorTags.name, tag)));
    await reg.db.delete(tags).where(and(eq(tags.repositoryId, repositoryId), eq(tags.name, tag)));
  });
}

/**
 * Stores mirrored manifest `digest` as a pushed one (under `tag`, or every mirrored tag naming it)
 * once every blob it names is in the store, linking blobs another repository brought in.
 */
export async function promoteIfComplete(reg: Registry, repositoryId: number, digest: string, tag?: string): Promise<boolean> {
  if (tag) {
    const current = await getManifest(reg, repositoryId, { kind: "tag", tag });
    if (current?.digest === digest) return true;
  }
  const [row] = await reg.db
    .select({ content: mirrorManifests.content, mediaType: mirrorManifests.mediaType, blobs: mirrorManifests.blobs })
    .from(mirrorManifests)
    .where(and(eq(mirrorManifests.repositoryId, repositoryId), eq(mirrorManifests.digest, digest)));
  if (!row) return false;
  const wanted = [...new Set(row.blobs.map((b) => b.digest))];
  if (wanted.length) {
    const present = await reg.db.select({ digest: blobs.digest }).from(blobs).where(inArray(blobs.digest, wanted));
    if (present.length < wanted.length) return false;
    await reg.reads.changing([repositoryBlobs], () =>
      reg.db
        .insert(repositoryBlobs)
        .values(wanted.map((d) => ({ repositoryId, digest: d })))
        .onConflictDoNothing(),
    );
  }
  const valid = validateManifest(row.content, row.mediaType);
  const tagged = tag
    ? [tag]
    : (await reg.db.select({ name: mirrorTags.name }).from(mirrorTags).where(and(eq(mirrorTags.repositoryId, repositoryId), eq(mirrorTags.manifestDigest, digest)))).map((t) => t.name);
  const refs: Reference[] = tagged.length ? tagged.map((t) => ({ kind: "tag", tag: t })) : [{ kind: "digest", digest }];
  for (const ref of refs) await putManifest(reg, repositoryId, { ref, bytes: row.content, valid });
  return true;
}

/** After blob `digest` is stored: every mirrored manifest of the repository naming it that is now complete. */
export async function promoteManifestsNaming(reg: Registry, repositoryId: number, digest: string): Promise<void> {
  const rows = await reg.db
    .select({ digest: mirrorManifests.digest })
    .from(mirrorManifests)
    .where(and(eq(mirrorManifests.repositoryId, repositoryId), sql`${mirrorManifests.blobs} @> ${JSON.stringify([{ digest }])}::jsonb`));
  for (const r of rows) await promoteIfComplete(reg, repositoryId, r.digest);
}

/** The size a mirrored manifest of the repository gives blob `digest`; undefined when none names it. */
export async function mirroredBlobSize(reg: Registry, repositoryId: number, digest: string): Promise<number | undefined> {
  const [row] = await reg.db
    .select({ blobs: mirrorManifests.blobs })
    .from(mirrorManifests)
    .where(and(eq(mirrorManifests.repositoryId, repositoryId), sql`${mirrorManifests.blobs} @> ${JSON.stringify([{ digest }])}::jsonb`))
    .limit(1);
  return row?.blobs.find((b) => b.digest === digest)?.size;
}

/** Where a mirrored model came from and when the upstream last confirmed one of its tags. */
export interface MirrorOrigin {
  /** The upstream's host[:port]. */
  host: string;
  refreshedAt: Date;
}

/** The origins of the mirrored models among `paths` (`namespace/model`), for the web catalog. */
export async function mirrorOrigins(reg: Pick<Registry, "db" | "config">, paths: string[]): Promise<Map<string, MirrorOrigin>> {
  const out = new Map<string, MirrorOrigin>();
  const wanted = [...new Set(paths.filter((p) => reg.config.mirrors.some((m) => p.startsWith(`${m.namespace}/`))))];
  if (wanted.length === 0) return out;
  const path = sql<string>`${accounts.name} || '/' || ${repositories.name}`;
  const rows = await reg.db
    .select({ path, upstream: mirrorTags.upstream, refreshedAt: sql<string>`max(${mirrorTags.refreshedAt})` })
    .from(mirrorTags)
    .innerJoin(repositories, eq(repositories.id, mirrorTags.repositoryId))
    .innerJoin(accounts, eq(accounts.id, repositories.namespaceId))
    .where(inArray(path, wanted))
    .groupBy(path, mirrorTags.upstream);
  for (const r of rows) {
    const at = new Date(r.refreshedAt);
    const seen = out.get(r.path);
    if (!seen || seen.refreshedAt < at) out.set(r.path, { host: new URL(r.upstream).host, refreshedAt: at });
  }
  return out;
}

function logPromotion(reg: Registry, name: RepoName, e: unknown): void {
  reg.mirror.log.warn(`mirror: ${name.path} could not be listed as a complete model yet`, { repository: name.path, error: e instanceof Error ? e.message : String(e) });
}

