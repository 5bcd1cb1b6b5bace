// Publisher signatures of manifests (docs/protocol.md, "Model signatures"). A signature is accepted
// only when it verifies over this registry's host, the repository and the digest, and its key is
// registered to an account that may push to the namespace; it is served, with that account, only
// while the key is still registered to it, so removing a key withdraws what it signed.

import { and, asc, count, eq, inArray } from "drizzle-orm";
import {
  KeyFormatError,
  MAX_SIGNATURES_PER_MANIFEST,
  fingerprint,
  parsePublicKeyLine,
  verifyModelSignature,
  type SignatureRecord,
  type SignatureUpload,
} from "@corral/shared/signing";
import type { Database } from "../db/open.ts";
import { accounts, manifests, modelSignatures, publicKeys } from "../db/schema.ts";
import { RegistryError } from "../errors.ts";
import { acceptedURLFor, type PublicURLs } from "../http/public-urls.ts";
import { actionsForRole } from "../auth/scope.ts";
import { accountForKey, roleOn, type Account } from "./accounts.ts";

/** Reads the upload body's fields, or says which one is wrong. */
export function parseSignatureUpload(bytes: Buffer): SignatureUpload {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new RegistryError("INVALID_REQUEST", 'the signature upload is not JSON; expected {"host","key","signature"}');
  }
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  for (const field of ["host", "key", "signature"] as const) {
    if (typeof b[field] !== "string" || !b[field]) throw new RegistryError("INVALID_REQUEST", `the signature upload has no "${field}" string`);
  }
  return { host: b["host"] as string, key: b["key"] as string, signature: b["signature"] as string };
}

export interface SignatureTarget {
  namespace: Account;
  repositoryId: number;
  /** `namespace/model`, lower case. */
  repository: string;
  digest: string;
}

/** Checks and stores one signature (replacing that key's earlier one); returns the signer's account name. */
export async function putSignature(db: Database, urls: PublicURLs, target: SignatureTarget, upload: SignatureUpload): Promise<string> {
  let key: ReturnType<typeof parsePublicKeyLine>;
  try {
    key = parsePublicKeyLine(upload.key);
  } catch (e) {
    if (e instanceof KeyFormatError) throw new RegistryError("INVALID_REQUEST", e.message);
    throw e;
  }
  const fp = fingerprint(key.publicKey);
  // The payload names the host the publisher pushed to; it must be this registry, or a signature
  // made for another registry could be planted here.
  if (!acceptedURLFor(urls, upload.host)) throw new RegistryError("DENIED", `the signature is for ${JSON.stringify(upload.host.slice(0, 100))}, which is not this registry`);
  if (!verifyModelSignature(key.publicKey, { host: upload.host, repository: target.repository, digest: target.digest }, upload.signature)) {
    throw new RegistryError("DENIED", `the signature by key ${fp} does not verify over ${upload.host}/${target.repository}@${target.digest}`);
  }
  const signer = await accountForKey(db, key.base64);
  if (!signer || !actionsForRole(await roleOn(db, signer, target.namespace)).includes("push")) {
    throw new RegistryError("DENIED", `key ${fp} does not belong to an account that may push to ${target.namespace.name}`);
  }
  const [present] = await db
    .select({ n: manifests.digest })
    .from(manifests)
    .where(and(eq(manifests.repositoryId, target.repositoryId), eq(manifests.digest, target.digest)));
  if (!present) throw new RegistryError("MANIFEST_UNKNOWN", `manifest ${target.digest} is not in ${target.repository}`);
  await db.transaction(async (tx) => {
    const [{ n } = { n: 0 }] = await tx
      .select({ n: count() })
      .from(modelSignatures)
      .where(and(eq(modelSignatures.repositoryId, target.repositoryId), eq(modelSignatures.manifestDigest, target.digest)));
    const values = { repositoryId: target.repositoryId, manifestDigest: target.digest, key: key.base64, fingerprint: fp, accountId: signer.id, host: upload.host.toLowerCase(), signature: upload.signature.trim() };
    const [replaced] = await tx
      .update(modelSignatures)
      .set({ ...values, createdAt: new Date() })
      .where(and(eq(modelSignatures.repositoryId, target.repositoryId), eq(modelSignatures.manifestDigest, target.digest), eq(modelSignatures.key, key.base64)))
      .returning({ key: modelSignatures.key });
    if (replaced) return;
    if (n >= MAX_SIGNATURES_PER_MANIFEST) throw new RegistryError("DENIED", `${target.repository}@${target.digest} already carries ${MAX_SIGNATURES_PER_MANIFEST} signatures, the most one manifest may`);
    await tx.insert(modelSignatures).values(values);
  });
  return signer.name;
}

/** Signatures of manifests whose keys are still registered to the account that signed. */
async function attested(db: Database, repositoryId: number, digests: string[]) {
  if (digests.length === 0) return [];
  return db
    .select({
      digest: modelSignatures.manifestDigest,
      host: modelSignatures.host,
      key: modelSignatures.key,
      fingerprint: modelSignatures.fingerprint,
      signature: modelSignatures.signature,
      account: accounts.name,
      createdAt: modelSignatures.createdAt,
    })
    .from(modelSignatures)
    .innerJoin(publicKeys, and(eq(publicKeys.key, modelSignatures.key), eq(publicKeys.accountId, modelSignatures.accountId)))
    .innerJoin(accounts, eq(accounts.id, modelSignatures.accountId))
    .where(and(eq(modelSignatures.repositoryId, repositoryId), inArray(modelSignatures.manifestDigest, digests)))
    .orderBy(asc(modelSignatures.createdAt), asc(modelSignatures.key));
}

/** What `GET /v2/<repository>/signatures/<digest>` lists. */
export async function listSignatures(db: Database, repositoryId: number, repository: string, digest: string): Promise<SignatureRecord[]> {
  return (await attested(db, repositoryId, [digest])).map((r) => ({
    host: r.host,
    repository,
    digest: r.digest,
    account: r.account,
    // The stored key is the canonical base64 wire blob, so this is the registered line.
    key: `ssh-ed25519 ${r.key}`,
    fingerprint: r.fingerprint,
    signature: r.signature,
    signed_at: r.createdAt.toISOString(),
  }));
}

/** Who signed each of `digests` (account and key fingerprint), for the catalog. */
export async function signersOf(db: Database, repositoryId: number, digests: string[]): Promise<Map<string, Array<{ account: string; fingerprint: string }>>> {
  const out = new Map<string, Array<{ account: string; fingerprint: string }>>();
  for (const r of await attested(db, repositoryId, [...new Set(digests)])) {
    const list = out.get(r.digest) ?? [];
    list.push({ account: r.account, fingerprint: r.fingerprint });
    out.set(r.digest, list);
  }
  return out;
}
