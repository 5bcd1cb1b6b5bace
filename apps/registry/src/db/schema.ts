// The registry's database: accounts and their keys, namespaces and who may use them, repositories,
// manifests and tags, the blobs they reference, open upload sessions and used nonces. Everything a
// second registry process needs is here or in the blob store; nothing lives only in memory.

import { sql } from "drizzle-orm";
import {
  bigint,
  customType,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";

/** Manifests are kept byte for byte: their digest is the sha256 of exactly these bytes. */
const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => "bytea",
  fromDriver: (v) => Buffer.from(v),
  toDriver: (v) => v,
});

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

/** A user or an organisation; its name is its namespace. */
export const accounts = pgTable("accounts", {
  id: serial("id").primaryKey(),
  name: text("name").notNull().unique(),
  kind: text("kind", { enum: ["user", "org"] }).notNull(),
  createdAt: createdAt(),
});

/** ed25519 public keys that identify a user in token requests. */
export const publicKeys = pgTable("public_keys", {
  id: serial("id").primaryKey(),
  accountId: integer("account_id").notNull().references(() => accounts.id, { onDelete: "cascade" }),
  /** base64 of the SSH wire blob, the second field of the `ssh-ed25519` line. */
  key: text("key").notNull().unique(),
  fingerprint: text("fingerprint").notNull(),
  comment: text("comment").notNull().default(""),
  createdAt: createdAt(),
});

/** Roles on a namespace: organisation members, or users granted access to another user's namespace. */
export const members = pgTable(
  "members",
  {
    namespaceId: integer("namespace_id").notNull().references(() => accounts.id, { onDelete: "cascade" }),
    accountId: integer("account_id").notNull().references(() => accounts.id, { onDelete: "cascade" }),
    role: text("role", { enum: ["reader", "writer", "owner"] }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.namespaceId, t.accountId] })],
);

export const repositories = pgTable(
  "repositories",
  {
    id: serial("id").primaryKey(),
    namespaceId: integer("namespace_id").notNull().references(() => accounts.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    visibility: text("visibility", { enum: ["public", "private"] }).notNull(),
    /** Markdown shown on the model's web page; owners edit it there. */
    description: text("description").notNull().default(""),
    createdAt: createdAt(),
  },
  (t) => [
    unique("repositories_namespace_name").on(t.namespaceId, t.name),
    // The web catalog's search expression; queries must spell it exactly like this to use the index.
    index("repositories_search").using("gin", sql`to_tsvector('simple', ${t.name} || ' ' || ${t.description})`),
  ],
);

/** Every blob the store holds completely and verified. */
export const blobs = pgTable("blobs", {
  digest: text("digest").primaryKey(),
  size: bigint("size", { mode: "number" }).notNull(),
  createdAt: createdAt(),
  /** Last upload, mount or existence check; garbage collection spares blobs touched within its grace period. */
  touchedAt: timestamp("touched_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Which repositories may serve a blob: it was uploaded or mounted there, or a manifest there names it. */
export const repositoryBlobs = pgTable(
  "repository_blobs",
  {
    repositoryId: integer("repository_id").notNull().references(() => repositories.id, { onDelete: "cascade" }),
    digest: text("digest").notNull().references(() => blobs.digest, { onDelete: "cascade" }),
    linkedAt: timestamp("linked_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.digest] }), index("repository_blobs_digest").on(t.digest)],
);

export const manifests = pgTable(
  "manifests",
  {
    repositoryId: integer("repository_id").notNull().references(() => repositories.id, { onDelete: "cascade" }),
    digest: text("digest").notNull(),
    mediaType: text("media_type").notNull(),
    content: bytea("content").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.digest] })],
);

/** The blobs a manifest references; the foreign key keeps garbage collection from deleting them. */
export const manifestBlobs = pgTable(
  "manifest_blobs",
  {
    repositoryId: integer("repository_id").notNull(),
    manifestDigest: text("manifest_digest").notNull(),
    blobDigest: text("blob_digest").notNull().references(() => blobs.digest, { onDelete: "restrict" }),
  },
  (t) => [
    primaryKey({ columns: [t.repositoryId, t.manifestDigest, t.blobDigest] }),
    foreignKey({ columns: [t.repositoryId, t.manifestDigest], foreignColumns: [manifests.repositoryId, manifests.digest] }).onDelete("cascade"),
    index("manifest_blobs_blob").on(t.blobDigest),
  ],
);

export const tags = pgTable(
  "tags",
  {
    repositoryId: integer("repository_id").notNull(),
    name: text("name").notNull(),
    manifestDigest: text("manifest_digest").notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.repositoryId, t.name] }),
    foreignKey({ columns: [t.repositoryId, t.manifestDigest], foreignColumns: [manifests.repositoryId, manifests.digest] }).onDelete("cascade"),
  ],
);

/** Open upload sessions; the bytes are in the blob store's upload area. */
export const uploads = pgTable(
  "uploads",
  {
    id: uuid("id").primaryKey().default(sql`gen_random_uuid()`),
    repositoryId: integer("repository_id").notNull().references(() => repositories.id, { onDelete: "cascade" }),
    /** Who opened the session: each account may hold REGISTRY_UPLOAD_LIMIT at once. Null for sessions older than the limit. */
    accountId: integer("account_id").references(() => accounts.id, { onDelete: "cascade" }),
    size: bigint("size", { mode: "number" }).notNull().default(0),
    createdAt: createdAt(),
    /** Last sign of life: the session's creation, a chunk arriving (refreshed while it arrives). */
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("uploads_account").on(t.accountId), index("uploads_updated").on(t.updatedAt)],
);

/** Nonces of accepted token requests, kept until their timestamp falls out of the accepted window. */
export const nonces = pgTable("nonces", {
  nonce: text("nonce").primaryKey(),
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
});

/** Secrets shared by every registry process on this database (token and URL signing keys). */
export const settings = pgTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** Every accepted manifest PUT: who pushed what, with which key, when (the web catalog shows the last). */
export const pushes = pgTable(
  "pushes",
  {
    id: serial("id").primaryKey(),
    repositoryId: integer("repository_id").notNull().references(() => repositories.id, { onDelete: "cascade" }),
    /** Null for a push by digest. */
    tag: text("tag"),
    manifestDigest: text("manifest_digest").notNull(),
    /** Account name as it was at push time; null when the token named nobody. */
    account: text("account"),
    /** `SHA256:…` of the key whose signed token request authorised the push; null for admin-issued tokens. */
    keyFingerprint: text("key_fingerprint"),
    pushedAt: timestamp("pushed_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("pushes_repository_time").on(t.repositoryId, t.pushedAt)],
);

/**
 * Publisher signatures of manifests (docs/protocol.md, "Model signatures"): at most one per key, each
 * over the registry host, the repository and the digest. Accepted only from a key of an account
 * that could push to the namespace; served only while that key is still registered to it.
 */
export const modelSignatures = pgTable(
  "model_signatures",
  {
    repositoryId: integer("repository_id").notNull(),
    manifestDigest: text("manifest_digest").notNull(),
    /** base64 of the signer's SSH wire public key, as in public_keys.key. */
    key: text("key").notNull(),
    fingerprint: text("fingerprint").notNull(),
    accountId: integer("account_id").notNull().references(() => accounts.id, { onDelete: "cascade" }),
    /** The registry host the payload names (one of this registry's URLs). */
    host: text("host").notNull(),
    /** base64 of the 64-byte ed25519 signature. */
    signature: text("signature").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.repositoryId, t.manifestDigest, t.key] }),
    foreignKey({ columns: [t.repositoryId, t.manifestDigest], foreignColumns: [manifests.repositoryId, manifests.digest] }).onDelete("cascade"),
  ],
);

/**
 * What the web catalog learnt from reading a blob once: the GGUF header facts of a model layer, or
 * the text of a small layer (template, system, params, licence). Content-addressed, so never stale.
 */
export const blobFacts = pgTable("blob_facts", {
  digest: text("digest").primaryKey().references(() => blobs.digest, { onDelete: "cascade" }),
  kind: text("kind", { enum: ["gguf", "text"] }).notNull(),
  /** Null when the blob could not be read as `kind`; `error` says why. */
  facts: jsonb("facts"),
  error: text("error"),
  createdAt: createdAt(),
});

/** One-time sign-in links `corral login` asks for; only the sha256 of the secret is kept. */
export const loginLinks = pgTable("login_links", {
  tokenHash: text("token_hash").primaryKey(),
  accountId: integer("account_id").notNull().references(() => accounts.id, { onDelete: "cascade" }),
  keyFingerprint: text("key_fingerprint").notNull(),
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  createdAt: createdAt(),
});

/** Browser sessions opened through a login link; valid only while the key that asked is still registered. */
export const webSessions = pgTable(
  "web_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    accountId: integer("account_id").notNull().references(() => accounts.id, { onDelete: "cascade" }),
    keyFingerprint: text("key_fingerprint").notNull(),
    /** Sent back by every state-changing form of this session. */
    csrfToken: text("csrf_token").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("web_sessions_expires").on(t.expiresAt)],
);

/**
 * Manifests a mirrored namespace fetched from its upstream, byte for byte (docs/protocol.md,
 * "Mirrors"). They are served while their blobs arrive on demand; once every blob is in the store a
 * manifest is also stored as a pushed one is (manifests, tags), which the catalog and garbage
 * collection read.
 */
export const mirrorManifests = pgTable(
  "mirror_manifests",
  {
    repositoryId: integer("repository_id").notNull().references(() => repositories.id, { onDelete: "cascade" }),
    digest: text("digest").notNull(),
    mediaType: text("media_type").notNull(),
    content: bytea("content").notNull(),
    /** The config and layer descriptors, `[{digest, size}]`: which blobs a client may fetch through this repository. */
    blobs: jsonb("blobs").$type<Array<{ digest: string; size: number }>>().notNull(),
    /** The upstream's origin, without credentials. */
    upstream: text("upstream").notNull(),
    fetchedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.digest] })],
);

/** Tags of mirrored repositories: what the upstream said the tag names, and when it last said so. */
export const mirrorTags = pgTable(
  "mirror_tags",
  {
    repositoryId: integer("repository_id").notNull(),
    name: text("name").notNull(),
    manifestDigest: text("manifest_digest").notNull(),
    upstream: text("upstream").notNull(),
    /** Last time the upstream confirmed (or changed) the tag; after REGISTRY_MIRROR_TTL it is asked again. */
    refreshedAt: timestamp("refreshed_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.repositoryId, t.name] }),
    foreignKey({ columns: [t.repositoryId, t.manifestDigest], foreignColumns: [mirrorManifests.repositoryId, mirrorManifests.digest] }).onDelete("cascade"),
  ],
);

/**
 * Manifest GETs by tag from clients, per repository and tag: each registry process adds what it
 * counted since its last write (services/pull-counts.ts), so replicas add up and never overwrite.
 * Rows stay when a tag is deleted: a model's pulls are the sum of its rows.
 */
export const pullCounts = pgTable(
  "pull_counts",
  {
    repositoryId: integer("repository_id").notNull().references(() => repositories.id, { onDelete: "cascade" }),
    tag: text("tag").notNull(),
    count: bigint("count", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.tag] })],
);
