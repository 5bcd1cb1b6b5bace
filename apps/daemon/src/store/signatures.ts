// Publisher signatures a pull verified, kept beside the models (docs/store-layout.md,
// "Signatures"): `signatures/sha256-<hex>.json`, one file per manifest digest, a JSON array of the
// registry's signature records. The records carry everything needed to check them again (key,
// signature, host, repository), so /api/show verifies them against the manifest it reads.

import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFileDurably } from "@corral/shared/durable-write";
import { blobFileName, parseDigest } from "@corral/shared/digest";
import { MAX_SIGNATURE_LIST_BYTES, fingerprint, parsePublicKeyLine, verifyModelSignature, type SignatureRecord } from "@corral/shared/signing";

/** A registry's signature record as this daemon verified it, and when. */
export interface StoredSignature extends SignatureRecord {
  verified_at: string;
}

const SUFFIX = ".json";

export class SignatureStore {
  readonly dir: string;

  constructor(modelsDir: string) {
    this.dir = join(modelsDir, "signatures");
  }

  path(digest: string): string {
    return join(this.dir, blobFileName(parseDigest(digest)) + SUFFIX);
  }

  /** The records kept for a manifest digest; none when there is no file or it cannot be read. */
  async read(digest: string): Promise<StoredSignature[]> {
    const p = this.path(digest);
    try {
      if ((await stat(p)).size > MAX_SIGNATURE_LIST_BYTES) return [];
      const list: unknown = JSON.parse(await readFile(p, "utf8"));
      return Array.isArray(list) ? (list.filter((r) => typeof r === "object" && r !== null) as StoredSignature[]) : [];
    } catch {
      return [];
    }
  }

  /**
   * The kept records that still verify over this manifest digest: a file edited, or a manifest
   * changed on disk, shows no publisher rather than a false one.
   */
  async verified(digest: string): Promise<StoredSignature[]> {
    return this.verifying(digest, await this.read(digest));
  }

  /** Of `records` (read before), those that verify over `digest`. */
  verifying(digest: string, records: StoredSignature[]): StoredSignature[] {
    return records.filter((r) => {
      try {
        const key = parsePublicKeyLine(String(r.key)).publicKey;
        return fingerprint(key) === r.fingerprint && typeof r.account === "string" && verifyModelSignature(key, { host: String(r.host), repository: String(r.repository), digest }, String(r.signature));
      } catch {
        return false;
      }
    });
  }

  /** Replaces the records of a digest (durably); an empty list removes the file. */
  async write(digest: string, records: StoredSignature[]): Promise<void> {
    const p = this.path(digest);
    if (records.length === 0) return this.remove(digest);
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    await writeFileDurably(p, JSON.stringify(records, null, 2) + "\n", { tmp: join(this.dir, `.tmp-${randomBytes(8).toString("hex")}`) });
  }

  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /** Manifest digests that have a file here, and the names of anything else in the folder. */
  async entries(): Promise<{ digests: string[]; strays: string[] }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return { digests: [], strays: [] };
    }
    const digests: string[] = [];
    const strays: string[] = [];
    for (const n of names) {
      const m = /^sha256-([0-9a-f]{64})\.json$/.exec(n);
      if (m) digests.push(`sha256:${m[1]}`);
      else strays.push(n);
    }
    return { digests, strays };
  }

  /** Removes a stray file (a temporary write a crash left). */
  async removeStray(name: string): Promise<void> {
    await rm(join(this.dir, name), { force: true });
  }
}
