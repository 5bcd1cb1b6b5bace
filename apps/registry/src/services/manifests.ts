// Manifests stored verbatim (digest = sha256 of the bytes), validated with the shared manifest
// module; every blob they name must already be in the repository.

import { and, eq, inArray, asc, gt } from "drizzle-orm";
import { MAX_MANIFEST_BYTES, ManifestError, MediaType, manifestDigests, readManifest, type Manifest } from "@corral/shared/manifest";
import { sha256Bytes } from "@corral/shared/digest";
import type { Database } from "../db/open.ts";
import { blobs, manifestBlobs, manifests, repositoryBlobs, tags } from "../db/schema.ts";
import { RegistryError } from "../errors.ts";
import type { Reference } from "./names.ts";
import { freeze, type CachedDatabase, type MemoSpec } from "./read-cache.ts";

export { MAX_MANIFEST_BYTES };

const MANIFEST_TYPES = new Set<string>([MediaType.manifestV2, MediaType.ociManifest]);
const INDEX_TYPES = new Set(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]);

export interface StoredManifest {
  digest: string;
  mediaType: string;
  content: Buffer;
}

/** The manifest's media type: its own `mediaType` field, else the request's Content-Type. */
function mediaTypeOf(declared: string | undefined, contentType: string | undefined): string {
  const header = contentType?.split(";")[0]?.trim();
  const type = declared || header || MediaType.manifestV2;
  if (INDEX_TYPES.has(type)) throw new RegistryError("MANIFEST_INVALID", `manifest lists and indexes (${type}) are not supported; push an image manifest`);
  if (!MANIFEST_TYPES.has(type)) {
    throw new RegistryError("MANIFEST_INVALID", `unsupported manifest media type ${JSON.stringify(type.slice(0, 100))}; expected ${MediaType.manifestV2} or ${MediaType.ociManifest}`);
  }
  return type;
}

export interface ValidManifest {
  manifest: Manifest;
  mediaType: string;
  digest: string;
}

export function validateManifest(bytes: Buffer, contentType: string | undefined): ValidManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) throw new RegistryError("SIZE_TOO_LARGE", `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  if (bytes.length === 0) throw new RegistryError("MANIFEST_INVALID", "manifest body is empty");
  // The shared parser bounds the nesting and the layer count before building anything.
  let read: ReturnType<typeof readManifest>;
  try {
    read = readManifest(bytes);
  } catch (e) {
    if (e instanceof ManifestError) throw new RegistryError("MANIFEST_INVALID", e.message);
    throw e;
  }
  const { manifest } = read;
  const mediaType = mediaTypeOf(read.declaredMediaType, contentType);
  if (mediaType === MediaType.ociManifest && !manifest.config.digest) throw new RegistryError("MANIFEST_INVALID", "manifest.config: an OCI image manifest needs a config descriptor");
  return { manifest, mediaType, digest: sha256Bytes(bytes) };
}

/** Stores a manifest (the bytes validateManifest passed) and points the tag (if the reference is one) at it; returns its digest. */
export async function putManifest({ db, reads }: CachedDatabase, repositoryId: number, put: { ref: Reference; bytes: Buffer; valid: ValidManifest }): Promise<string> {
  const { ref, bytes } = put;
  const { manifest, mediaType, digest } = put.valid;
  if (ref.kind === "digest" && ref.digest !== digest) {
    throw new RegistryError("DIGEST_INVALID", `the manifest's digest is ${digest}, not ${ref.digest}`);
  }
  const descriptors = [...manifest.layers.map((l, i) => ({ d: l, where: `layers[${i}]` }))];
  if (manifest.config.digest) descriptors.push({ d: manifest.config, where: "config" });
  const wanted = [...new Set(manifestDigests(manifest))];
  await reads.changing([manifests, manifestBlobs, tags], () =>
    db.transaction(async (tx) => {
      const present = wanted.length
        ? await tx
            .select({ digest: blobs.digest, size: blobs.size })
            .from(repositoryBlobs)
            .innerJoin(blobs, eq(blobs.digest, repositoryBlobs.digest))
            .where(and(eq(repositoryBlobs.repositoryId, repositoryId), inArray(repositoryBlobs.digest, wanted)))
        : [];
      const sizes = new Map(present.map((p) => [p.digest, p.size]));
      for (const { d, where } of descriptors) {
        const size = sizes.get(d.digest);
        if (size === undefined) throw new RegistryError("MANIFEST_BLOB_UNKNOWN", `manifest.${where} names blob ${d.digest}, which this repository does not have`).withDetail({ digest: d.digest });
        if (size !== d.size) throw new RegistryError("MANIFEST_INVALID", `manifest.${where}.size is ${d.size} but blob ${d.digest} has ${size} bytes`);
      }
      await tx.insert(manifests).values({ repositoryId, digest, mediaType, content: bytes }).onConflictDoNothing();
      if (wanted.length) {
        await tx.insert(manifestBlobs).values(wanted.map((blobDigest) => ({ repositoryId, manifestDigest: digest, blobDigest }))).onConflictDoNothing();
      }
      if (ref.kind === "tag") {
        await tx
          .insert(tags)
          .values({ repositoryId, name: ref.tag, manifestDigest: digest })
          .onConflictDoUpdate({ target: [tags.repositoryId, tags.name], set: { manifestDigest: digest, updatedAt: new Date() } });
      }
    }),
  );
  return digest;
}

// A model's manifest names a handful of layers (about 1 KiB); larger ones are rare and are not
// kept, so the memo holds at most 16 MiB.
const MEMO_MANIFEST_BYTES = 16 << 10;
const manifestLookup: MemoSpec<StoredManifest | undefined> = {
  tables: [tags, manifests],
  max: 1024,
  keep: (m) => !m || m.content.length <= MEMO_MANIFEST_BYTES,
};

/** The manifest a tag or digest names in the repository. The result is shared: do not modify it. */
export function getManifest({ db, reads }: CachedDatabase, repositoryId: number, ref: Reference): Promise<StoredManifest | undefined> {
  const key = ref.kind === "tag" ? `${repositoryId}:${ref.tag}` : `${repositoryId}@${ref.digest}`;
  return reads.read(manifestLookup, key, async () => freeze(await queryManifest(db, repositoryId, ref)));
}

async function queryManifest(db: Database, repositoryId: number, ref: Reference): Promise<StoredManifest | undefined> {
  const columns = { digest: manifests.digest, mediaType: manifests.mediaType, content: manifests.content };
  if (ref.kind === "tag") {
    const [m] = await db
      .select(columns)
      .from(tags)
      .innerJoin(manifests, and(eq(manifests.repositoryId, tags.repositoryId), eq(manifests.digest, tags.manifestDigest)))
      .where(and(eq(tags.repositoryId, repositoryId), eq(tags.name, ref.tag)));
    return m;
  }
  const [m] = await db.select(columns).from(manifests).where(and(eq(manifests.repositoryId, repositoryId), eq(manifests.digest, ref.digest)));
  return m;
}

/** Deleting by tag removes the tag; by digest removes the manifest and every tag pointing at it. */
export async function deleteManifest({ db, reads }: CachedDatabase, repositoryId: number, ref: Reference): Promise<boolean> {
  if (ref.kind === "tag") {
    const gone = await reads.changing([tags], () => db.delete(tags).where(and(eq(tags.repositoryId, repositoryId), eq(tags.name, ref.tag))).returning({ name: tags.name }));
    return gone.length > 0;
  }
  return reads.changing([tags, manifestBlobs, manifests], () =>
    db.transaction(async (tx) => {
      await tx.delete(tags).where(and(eq(tags.repositoryId, repositoryId), eq(tags.manifestDigest, ref.digest)));
      await tx.delete(manifestBlobs).where(and(eq(manifestBlobs.repositoryId, repositoryId), eq(manifestBlobs.manifestDigest, ref.digest)));
      const gone = await tx.delete(manifests).where(and(eq(manifests.repositoryId, repositoryId), eq(manifests.digest, ref.digest))).returning({ d: manifests.digest });
      return gone.length > 0;
    }),
  );
}

export async function listTags(db: Database, repositoryId: number, n: number, last: string): Promise<string[]> {
  const rows = await db
    .select({ name: tags.name })
    .from(tags)
    .where(and(eq(tags.repositoryId, repositoryId), last ? gt(tags.name, last) : undefined))
    .orderBy(asc(tags.name))
    .limit(n);
  return rows.map((r) => r.name);
}
