// Checking that the database and the blob store agree, and repairing what does not: blob rows
// whose bytes are missing from the store or do not hash to their digest (and the manifests and
// tags that name them), bytes in the store no row knows, upload areas without a session, and
// publisher signatures that do not verify or whose key has been withdrawn.
// Files younger than the grace period may belong to a push in progress and are left alone.

import { createHash } from "node:crypto";
import { and, eq, inArray, notExists, sql } from "drizzle-orm";
import { blobFacts, blobs, manifestBlobs, manifests, modelSignatures, publicKeys, repositories, repositoryBlobs, accounts, tags, uploads } from "../db/schema.ts";
import { parsePublicKeyLine, verifyModelSignature } from "@corral/shared/signing";
import type { BlobStore } from "../storage/blob-store.ts";
import type { CachedDatabase } from "./read-cache.ts";

export type RegistryFsckKind =
  /** A blob row whose bytes the store does not have. */
  | "missing-blob"
  /** A blob whose stored bytes do not hash to its digest, or whose size disagrees with its row. */
  | "corrupt-blob"
  /** A manifest that names a missing or corrupt blob. */
  | "broken-manifest"
  /** Bytes in the store that no blob row knows. */
  | "unknown-blob"
  /** An upload area with no upload session in the database. */
  | "stray-upload"
  /** A blob row nothing references (garbage collection removes these). */
  | "unreferenced-blob"
  /** A publisher signature that does not verify over its host, repository and manifest digest. */
  | "bad-signature"
  /** A publisher signature whose key is no longer registered to the account that signed (never listed). */
  | "withdrawn-signature";

export interface RegistryFsckProblem {
  kind: RegistryFsckKind;
  /** The blob digest, `namespace/model@digest` for a manifest, or the upload id. */
  subject: string;
  detail: string;
  repaired?: string;
}

export interface RegistryFsckOptions {
  /** Compare sizes only instead of hashing every stored blob. */
  quick?: boolean;
  repair?: boolean;
  /** Store files and uploads younger than this are not touched (a push may be writing them). */
  graceSeconds: number;
}

export interface RegistryFsckReport {
  blobs: number;
  manifests: number;
  bytesVerified: number;
  problems: RegistryFsckProblem[];
  remaining: number;
  /** Of the remaining, those that break a pull (missing or corrupt blobs, broken manifests). */
  remainingErrors: number;
}

const ERRORS: ReadonlySet<RegistryFsckKind> = new Set(["missing-blob", "corrupt-blob", "broken-manifest"]);

async function hashStored(store: BlobStore, digest: string): Promise<{ digest: string; size: number }> {
  const h = createHash("sha256");
  let size = 0;
  for await (const chunk of await store.read(digest)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${h.digest("hex")}`, size };
}

export async function fsckRegistry(reg: CachedDatabase & { store: BlobStore }, opts: RegistryFsckOptions): Promise<RegistryFsckReport> {
  const { db, reads, store } = reg;
  const problems: RegistryFsckProblem[] = [];
  const graceCutoff = Date.now() - opts.graceSeconds * 1000;
  let bytesVerified = 0;

  // 1. What the store holds, and what the database says it holds.
  const stored = new Map<string, { size: number; modified: Date }>();
  for await (const b of store.list()) stored.set(b.digest, { size: b.size, modified: b.modified });
  const rows = await db.select({ digest: blobs.digest, size: blobs.size }).from(blobs).orderBy(blobs.digest);

  const bad = new Set<string>();
  for (const row of rows) {
    const s = stored.get(row.digest);
    if (!s) {
      problems.push({ kind: "missing-blob", subject: row.digest, detail: `the database lists blob ${row.digest} (${row.size} bytes) but the ${store.kind} store does not have it` });
      bad.add(row.digest);
      continue;
    }
    if (s.size !== row.size) {
      problems.push({ kind: "corrupt-blob", subject: row.digest, detail: `blob ${row.digest} has ${s.size} bytes in the store but ${row.size} in the database` });
      bad.add(row.digest);
      continue;
    }
    if (opts.quick) continue;
    const got = await hashStored(store, row.digest).catch((e: Error) => ({ digest: `unreadable (${e.message})`, size: 0 }));
    bytesVerified += got.size;
    if (got.digest !== row.digest) {
      problems.push({ kind: "corrupt-blob", subject: row.digest, detail: `blob ${row.digest} holds bytes whose sha256 is ${got.digest}` });
      bad.add(row.digest);
    }
  }

  // 2. Manifests naming a bad blob, with the repository they are in and the tags pointing at them.
  const broken = bad.size
    ? await db
        .selectDistinct({ repositoryId: manifestBlobs.repositoryId, digest: manifestBlobs.manifestDigest, ns: accounts.name, model: repositories.name })
        .from(manifestBlobs)
        .innerJoin(repositories, eq(repositories.id, manifestBlobs.repositoryId))
        .innerJoin(accounts, eq(accounts.id, repositories.namespaceId))
        .where(inArray(manifestBlobs.blobDigest, [...bad]))
    : [];
  for (const m of broken) {
    const named = await db
      .select({ d: manifestBlobs.blobDigest })
      .from(manifestBlobs)
      .where(and(eq(manifestBlobs.repositoryId, m.repositoryId), eq(manifestBlobs.manifestDigest, m.digest), inArray(manifestBlobs.blobDigest, [...bad])));
    const tagNames = (await db.select({ name: tags.name }).from(tags).where(and(eq(tags.repositoryId, m.repositoryId), eq(tags.manifestDigest, m.digest)))).map((t) => t.name);
    problems.push({
      kind: "broken-manifest",
      subject: `${m.ns}/${m.model}@${m.digest}`,
      detail: `manifest ${m.ns}/${m.model}@${m.digest}${tagNames.length ? ` (tags: ${tagNames.join(", ")})` : ""} names blob(s) that are missing or damaged: ${named.map((n) => n.d).join(", ")}`,
    });
  }

  // 3. Bytes no row knows, and upload areas no session owns.
  const known = new Set(rows.map((r) => r.digest));
  for (const [digest, s] of stored) {
    if (known.has(digest)) continue;
    problems.push({ kind: "unknown-blob", subject: digest, detail: `the store holds ${digest} (${s.size} bytes) but the database does not know it${s.modified.getTime() > graceCutoff ? " (recent: a push may be committing it)" : ""}` });
  }
  const sessions = new Set((await db.select({ id: uploads.id }).from(uploads)).map((u) => u.id));
  const strayUploads: Array<{ id: string; modified: Date }> = [];
  for await (const u of store.listUploads()) {
    if (sessions.has(u.id)) continue;
    strayUploads.push(u);
    problems.push({ kind: "stray-upload", subject: u.id, detail: `upload area ${u.id} has no upload session${u.modified.getTime() > graceCutoff ? " (recent)" : ""}` });
  }

  // 4. Rows nothing references: reported, left to garbage collection and its grace period.
  const unreferenced = await db
    .select({ digest: blobs.digest, size: blobs.size })
    .from(blobs)
    .where(
      and(
        notExists(db.select({ one: sql`1` }).from(manifestBlobs).where(eq(manifestBlobs.blobDigest, blobs.digest))),
        notExists(db.select({ one: sql`1` }).from(repositoryBlobs).where(eq(repositoryBlobs.digest, blobs.digest))),
      ),
    );
  for (const u of unreferenced) {
    if (bad.has(u.digest)) continue;
    problems.push({ kind: "unreferenced-blob", subject: u.digest, detail: `blob ${u.digest} (${u.size} bytes) is in no repository; \`corral-registry gc\` removes it` });
  }

  // 5. Publisher signatures (docs/protocol.md, "Model signatures"). A row that does not verify was
  // changed behind the registry's back (it checks each before storing it); one whose key was
  // removed is already left out of every answer.
  const signatureRows = await db
    .select({
      repositoryId: modelSignatures.repositoryId,
      digest: modelSignatures.manifestDigest,
      key: modelSignatures.key,
      fingerprint: modelSignatures.fingerprint,
      accountId: modelSignatures.accountId,
      host: modelSignatures.host,
      signature: modelSignatures.signature,
      ns: accounts.name,
      model: repositories.name,
    })
    .from(modelSignatures)
    .innerJoin(repositories, eq(repositories.id, modelSignatures.repositoryId))
    .innerJoin(accounts, eq(accounts.id, repositories.namespaceId));
  const registered = new Set((await db.select({ accountId: publicKeys.accountId, key: publicKeys.key }).from(publicKeys)).map((k) => `${k.accountId} ${k.key}`));
  const signatureRow = new Map<string, (typeof signatureRows)[number]>();
  for (const row of signatureRows) {
    const subject = `${row.ns}/${row.model}@${row.digest} ${row.fingerprint}`;
    signatureRow.set(subject, row);
    let verifies = false;
    try {
      verifies = verifyModelSignature(parsePublicKeyLine(`ssh-ed25519 ${row.key}`).publicKey, { host: row.host, repository: `${row.ns}/${row.model}`, digest: row.digest }, row.signature);
    } catch {
      verifies = false;
    }
    if (!verifies) problems.push({ kind: "bad-signature", subject, detail: `the signature of ${row.ns}/${row.model}@${row.digest} by key ${row.fingerprint} does not verify (changed in the database)` });
    else if (!registered.has(`${row.accountId} ${row.key}`)) {
      problems.push({ kind: "withdrawn-signature", subject, detail: `the signature of ${row.ns}/${row.model}@${row.digest} by key ${row.fingerprint} belongs to a key no longer registered to its signer; it is not listed` });
    }
  }

  if (opts.repair) {
    for (const p of problems) {
      switch (p.kind) {
        case "bad-signature":
        case "withdrawn-signature": {
          const row = signatureRow.get(p.subject)!;
          await db
            .delete(modelSignatures)
            .where(and(eq(modelSignatures.repositoryId, row.repositoryId), eq(modelSignatures.manifestDigest, row.digest), eq(modelSignatures.key, row.key)));
          p.repaired = "deleted the signature";
          break;
        }
        case "broken-manifest": {
          const [path, digest] = p.subject.split("@") as [string, string];
          const m = broken.find((b) => `${b.ns}/${b.model}` === path && b.digest === digest)!;
          // Tags and the manifest's blob list go with the manifest (foreign keys cascade).
          await reads.changing([tags, manifestBlobs, manifests], () =>
            db.transaction(async (tx) => {
              await tx.delete(tags).where(and(eq(tags.repositoryId, m.repositoryId), eq(tags.manifestDigest, digest)));
              await tx.delete(manifestBlobs).where(and(eq(manifestBlobs.repositoryId, m.repositoryId), eq(manifestBlobs.manifestDigest, digest)));
              await tx.delete(manifests).where(and(eq(manifests.repositoryId, m.repositoryId), eq(manifests.digest, digest)));
            }),
          );
          p.repaired = "deleted the manifest and its tags";
          break;
        }
        default:
          break;
      }
    }
    for (const p of problems) {
      switch (p.kind) {
        case "missing-blob":
        case "corrupt-blob":
          // Any manifest naming it was removed above; the row's repository links and facts cascade.
          await reads.changing([blobs, repositoryBlobs, blobFacts], () => db.delete(blobs).where(eq(blobs.digest, p.subject)));
          if (p.kind === "corrupt-blob") await store.delete(p.subject);
          p.repaired = p.kind === "missing-blob" ? "removed the database row; push the blob again" : "deleted the bytes and the database row; push the blob again";
          break;
        case "unknown-blob":
          if ((stored.get(p.subject)?.modified.getTime() ?? 0) <= graceCutoff) {
            await store.delete(p.subject);
            p.repaired = "deleted from the store";
          }
          break;
        case "stray-upload": {
          const u = strayUploads.find((s) => s.id === p.subject);
          if (u && u.modified.getTime() <= graceCutoff) {
            await store.discardUpload(u.id);
            p.repaired = "deleted the upload area";
          }
          break;
        }
        default:
          break;
      }
    }
  }
  const left = problems.filter((p) => p.repaired === undefined);
  const manifestCount = (await db.select({ n: sql<number>`count(*)::int` }).from(manifests))[0]?.n ?? 0;
  return {
    blobs: rows.length,
    manifests: manifestCount,
    bytesVerified,
    problems,
    remaining: left.length,
    remainingErrors: left.filter((p) => ERRORS.has(p.kind)).length,
  };
}

export function formatRegistryFsckReport(r: RegistryFsckReport, repair: boolean): string {
  const lines = r.problems.map((p) => `${p.kind}: ${p.detail}${p.repaired ? ` [repaired: ${p.repaired}]` : ""}`);
  const head = `${r.manifests} manifests, ${r.blobs} blobs${r.bytesVerified ? `, ${r.bytesVerified} bytes hashed` : ""}`;
  if (r.problems.length === 0) lines.push(`${head}: no problems found`);
  else lines.push(`${head}: ${r.problems.length} problem(s)` + (repair ? `, ${r.problems.length - r.remaining} repaired, ${r.remaining} left` : "; run with --repair to fix them"));
  return lines.join("\n") + "\n";
}
