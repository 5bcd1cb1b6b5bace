// Checking a model store for what a crash, a full disk or a stray edit can leave behind, and
// repairing it: manifests that cannot be read or name blobs that are missing or damaged, blobs
// whose bytes do not hash to their name, temporary and partial files, blobs no model uses, and
// kept publisher signatures that no longer verify or belong to no manifest.
// It works on the directory itself, so it runs with or without a daemon; files younger than the
// grace period may belong to a write in progress and are only reported.

import { readdir, readFile, rm, rmdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { manifestDigests, parseManifest, type Manifest } from "@corral/shared/manifest";
import { sha256Bytes, sha256File } from "@corral/shared/digest";
import { ModelName } from "@corral/shared/name";
import { TEMP_PREFIX } from "./blobs.ts";
import { isPartialDownloadFile } from "./partial-downloads.ts";
import { SignatureStore } from "./signatures.ts";

export type FsckProblemKind =
  /** A manifest file that is not valid JSON, not a manifest, or at a path that is no model name. */
  | "invalid-manifest"
  /** A manifest naming a blob the store does not have. */
  | "missing-blob"
  /** A blob whose bytes do not hash to its name (or, with `quick`, whose size disagrees with a manifest). */
  | "corrupt-blob"
  /** A temporary file of an interrupted write. */
  | "temp-file"
  /** The data or state of an interrupted download (kept for resuming while young). */
  | "partial-download"
  /** A file in the blobs directory that is neither a blob nor one of the above. */
  | "stray-file"
  /** A blob no manifest names. */
  | "unreferenced-blob"
  /** Kept publisher signature records that do not verify over their manifest's digest (an edited file). */
  | "bad-signature"
  /** A signature file no manifest's digest names, or a file in signatures/ that is none. */
  | "unreferenced-signature";

export interface FsckProblem {
  kind: FsckProblemKind;
  /** Path relative to the models directory. */
  path: string;
  /** What is wrong, in words that name the model and blob involved. */
  detail: string;
  /** What --repair did about it; absent when nothing was done. */
  repaired?: string;
}

export interface FsckOptions {
  /** Compare sizes with the manifests instead of hashing every blob. */
  quick?: boolean;
  repair?: boolean;
  /**
   * Temporary files, stray files and unreferenced blobs younger than this are left alone by a
   * repair, as a running daemon may be writing them (default one hour; 0 when no daemon runs).
   */
  graceMs?: number;
  /** Partial downloads younger than this are kept for resuming (default one hour). */
  partialGraceMs?: number;
  now?: number;
  /** Called before each blob is hashed, for progress output. */
  onHash?: (digest: string, size: number) => void;
}

export interface FsckReport {
  modelsDir: string;
  manifests: number;
  blobs: number;
  /** Bytes hashed (0 with `quick`). */
  bytesVerified: number;
  problems: FsckProblem[];
  /** Problems left as they were (all of them without `repair`). */
  remaining: number;
  /** Of those, the ones that make a model unusable (invalid manifests, missing or corrupt blobs). */
  remainingErrors: number;
}

/** Kinds that leave a model unusable; the rest only waste space. */
export const FSCK_ERRORS: ReadonlySet<FsckProblemKind> = new Set(["invalid-manifest", "missing-blob", "corrupt-blob"]);

const HOUR = 60 * 60 * 1000;
const BLOB_RE = /^sha256-([0-9a-f]{64})$/;

interface ManifestEntry {
  path: string;
  name: ModelName;
  manifest: Manifest;
  /** sha256 of the manifest file's bytes, which its signatures are made over. */
  digest: string;
}

async function entries(dir: string): Promise<Array<{ name: string; isDir: boolean; isFile: boolean }>> {
  try {
    return (await readdir(dir, { withFileTypes: true })).map((d) => ({ name: d.name, isDir: d.isDirectory(), isFile: d.isFile() }));
  } catch {
    return [];
  }
}

async function mtimeMs(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.mtimeMs ?? 0;
}

export async function fsckStore(modelsDir: string, opts: FsckOptions = {}): Promise<FsckReport> {
  const now = opts.now ?? Date.now();
  const grace = opts.graceMs ?? HOUR;
  const partialGrace = opts.partialGraceMs ?? HOUR;
  const repair = opts.repair ?? false;
  const blobsDir = join(modelsDir, "blobs");
  const manifestsDir = join(modelsDir, "manifests");
  const problems: FsckProblem[] = [];
  const rel = (p: string): string => relative(modelsDir, p);
  const old = async (p: string, ms: number): Promise<boolean> => now - (await mtimeMs(p)) >= ms;

  // 1. Manifests, four directory levels deep; anything else under manifests/ is reported.
  const manifests: ManifestEntry[] = [];
  const walk = async (dir: string, parts: string[]): Promise<void> => {
    for (const e of await entries(dir)) {
      const p = join(dir, e.name);
      if (e.name.startsWith(TEMP_PREFIX)) {
        const young = !(await old(p, grace));
        problems.push({ kind: "temp-file", path: rel(p), detail: `temporary file of an interrupted manifest write${young ? " (recent: may be in progress)" : ""}` });
        continue;
      }
      if (e.isDir && parts.length < 3) {
        await walk(p, [...parts, e.name]);
        continue;
      }
      if (!e.isFile || parts.length !== 3) {
        problems.push({ kind: "invalid-manifest", path: rel(p), detail: `${e.isDir ? "directory" : "file"} at a depth where no model manifest belongs` });
        continue;
      }
      const name = ModelName.fromParts(parts[0]!, parts[1]!, parts[2]!, e.name);
      if (!name.isValid()) {
        problems.push({ kind: "invalid-manifest", path: rel(p), detail: `${name.toString()} is not a valid model name` });
        continue;
      }
      try {
        const bytes = await readFile(p);
        manifests.push({ path: p, name, manifest: parseManifest(bytes), digest: sha256Bytes(bytes) });
      } catch (err) {
        problems.push({ kind: "invalid-manifest", path: rel(p), detail: `manifest of ${name.shortest()} cannot be read: ${(err as Error).message}` });
      }
    }
  };
  await walk(manifestsDir, []);

  // 2. The blobs directory: blobs, temporary files, partial downloads, anything else.
  const blobFiles = new Map<string, { path: string; size: number }>();
  for (const e of await entries(blobsDir)) {
    const p = join(blobsDir, e.name);
    const m = BLOB_RE.exec(e.name);
    if (m && e.isFile) {
      blobFiles.set(`sha256:${m[1]}`, { path: p, size: (await stat(p)).size });
    } else if (e.name.startsWith(TEMP_PREFIX)) {
      const young = !(await old(p, grace));
      problems.push({ kind: "temp-file", path: rel(p), detail: `temporary file of an interrupted blob write${young ? " (recent: may be in progress)" : ""}` });
    } else if (isPartialDownloadFile(e.name)) {
      const young = !(await old(p, partialGrace));
      problems.push({ kind: "partial-download", path: rel(p), detail: `unfinished download${young ? ", kept so that the next pull resumes it" : ""}` });
    } else {
      problems.push({ kind: "stray-file", path: rel(p), detail: e.isFile ? "not a blob (its name is not sha256-<64 hex>)" : "not a regular file" });
    }
  }

  // 3. Every blob a manifest names must be there with the size the manifest gives; the bytes must
  // hash to the name (each blob is hashed once, however many manifests share it).
  const sizesNamed = new Map<string, number>();
  for (const m of manifests) {
    for (const d of [...m.manifest.layers, ...(m.manifest.config.digest ? [m.manifest.config] : [])]) sizesNamed.set(d.digest, d.size);
  }
  const damaged = new Map<string, string>();
  let bytesVerified = 0;
  for (const [digest, f] of [...blobFiles].sort(([a], [b]) => a.localeCompare(b))) {
    const want = sizesNamed.get(digest);
    if (want !== undefined && want !== f.size) {
      damaged.set(digest, `blob ${digest} has ${f.size} bytes but a manifest says ${want}`);
      continue;
    }
    if (opts.quick) continue;
    opts.onHash?.(digest, f.size);
    const got = await sha256File(f.path).catch((e: Error) => ({ digest: `unreadable (${e.message})`, size: 0 }));
    bytesVerified += got.size;
    if (got.digest !== digest) damaged.set(digest, `blob ${digest} holds bytes whose sha256 is ${got.digest}`);
  }
  for (const [digest, detail] of damaged) problems.push({ kind: "corrupt-blob", path: rel(blobFiles.get(digest)!.path), detail });

  const brokenManifests = new Map<string, ManifestEntry>();
  for (const m of manifests) {
    for (const digest of new Set(manifestDigests(m.manifest))) {
      if (!blobFiles.has(digest)) {
        problems.push({ kind: "missing-blob", path: rel(m.path), detail: `${m.name.shortest()} names blob ${digest}, which is not in the store` });
        brokenManifests.set(m.path, m);
      } else if (damaged.has(digest)) {
        brokenManifests.set(m.path, m);
      }
    }
  }

  // 4. Blobs no intact manifest names (those named only by broken ones go when those do).
  const referenced = new Set<string>();
  const byBroken = new Map<string, string[]>();
  for (const m of manifests) {
    for (const d of manifestDigests(m.manifest)) {
      if (!brokenManifests.has(m.path)) referenced.add(d);
      else byBroken.set(d, [...(byBroken.get(d) ?? []), m.name.shortest()]);
    }
  }
  for (const [digest, f] of blobFiles) {
    if (referenced.has(digest) || damaged.has(digest)) continue;
    const young = !(await old(f.path, grace));
    const users = byBroken.get(digest);
    const why = users ? `is named only by broken manifests (${users.join(", ")})` : "is named by no model";
    problems.push({ kind: "unreferenced-blob", path: rel(f.path), detail: `blob ${digest} (${f.size} bytes) ${why}${young ? " (recent: may belong to a create in progress)" : ""}` });
  }

  // 5. Kept publisher signatures (docs/store-layout.md, "Signatures"): each file must verify over
  // the digest it is named by, and some manifest must have that digest.
  const signatures = new SignatureStore(modelsDir);
  const manifestDigestsHere = new Set(manifests.map((m) => m.digest));
  const { digests: signed, strays } = await signatures.entries();
  for (const digest of signed) {
    const p = signatures.path(digest);
    // Read once: a second read could see a pull's newer file and call the first one damaged.
    const kept = await signatures.read(digest);
    const good = signatures.verifying(digest, kept);
    if (!manifestDigestsHere.has(digest)) {
      const young = !(await old(p, grace));
      problems.push({ kind: "unreferenced-signature", path: rel(p), detail: `signatures of manifest ${digest}, which no model has${young ? " (recent: may belong to a pull in progress)" : ""}` });
    } else if (good.length < kept.length || kept.length === 0) {
      const users = manifests.filter((m) => m.digest === digest).map((m) => m.name.shortest());
      const detail = kept.length === 0 ? "cannot be read (not a JSON list of signature records)" : `${kept.length - good.length} of ${kept.length} do not verify over the manifest (the file was edited or damaged)`;
      problems.push({ kind: "bad-signature", path: rel(p), detail: `the publisher signatures kept for ${users.join(", ")}: ${detail}` });
    }
  }
  for (const n of strays) {
    const p = join(signatures.dir, n);
    const young = !(await old(p, grace));
    problems.push({ kind: "unreferenced-signature", path: rel(p), detail: `not a signature file (its name is not sha256-<64 hex>.json)${young ? " (recent: may be a write in progress)" : ""}` });
  }

  if (repair) await repairProblems();
  const left = problems.filter((p) => p.repaired === undefined);
  const remainingErrors = left.filter((p) => FSCK_ERRORS.has(p.kind)).length;
  return { modelsDir, manifests: manifests.length, blobs: blobFiles.size, bytesVerified, problems, remaining: left.length, remainingErrors };

  async function repairProblems(): Promise<void> {
    const removedManifests = new Set<string>();
    const removeManifest = async (path: string): Promise<void> => {
      await rm(path, { force: true });
      removedManifests.add(path);
      // Drop the directories it leaves empty, up to manifests/.
      let dir = join(path, "..");
      while (dir.startsWith(manifestsDir + "/")) {
        if (!(await rmdir(dir).then(() => true, () => false))) break;
        dir = join(dir, "..");
      }
    };
    for (const p of problems) {
      const abs = join(modelsDir, p.path);
      switch (p.kind) {
        case "invalid-manifest":
          if ((await stat(abs).catch(() => undefined))?.isFile()) {
            await removeManifest(abs);
            p.repaired = "removed the manifest";
          }
          break;
        case "missing-blob":
          if (!removedManifests.has(abs)) await removeManifest(abs);
          p.repaired = "removed the manifest";
          break;
        case "corrupt-blob": {
          await rm(abs, { force: true });
          const digest = `sha256:${BLOB_RE.exec(p.path.split("/").pop() ?? "")?.[1] ?? ""}`;
          const users = [...brokenManifests.values()].filter((m) => manifestDigests(m.manifest).includes(digest));
          for (const m of users) if (!removedManifests.has(m.path)) await removeManifest(m.path);
          p.repaired = users.length ? `deleted the blob and the manifests naming it: ${users.map((m) => m.name.shortest()).join(", ")}` : "deleted the blob";
          break;
        }
        case "temp-file":
        case "stray-file":
        case "unreferenced-blob":
          if (await old(abs, grace)) {
            await rm(abs, { force: true });
            p.repaired = "deleted";
          }
          break;
        case "bad-signature": {
          // The records that verify stay; with none left the file goes.
          const digest = `sha256:${/sha256-([0-9a-f]{64})\.json$/.exec(p.path)?.[1] ?? ""}`;
          const good = await signatures.verified(digest);
          await signatures.write(digest, good);
          p.repaired = good.length ? `kept the ${good.length} that verify` : "deleted the file";
          break;
        }
        case "unreferenced-signature":
          if (await old(abs, grace)) {
            await rm(abs, { force: true });
            p.repaired = "deleted";
          }
          break;
        case "partial-download":
          if (await old(abs, partialGrace)) {
            await rm(abs, { force: true });
            p.repaired = "deleted";
          }
          break;
      }
    }
  }
}

/** One line per problem, then a summary; what `corral fsck` prints. */
export function formatFsckReport(r: FsckReport, repair: boolean): string {
  const lines = r.problems.map((p) => `${p.kind}: ${p.path}: ${p.detail}${p.repaired ? ` [repaired: ${p.repaired}]` : ""}`);
  const verified = r.bytesVerified ? `, ${r.bytesVerified} bytes hashed` : "";
  if (r.problems.length === 0) lines.push(`${r.modelsDir}: ${r.manifests} manifests, ${r.blobs} blobs${verified}: no problems found`);
  else {
    const fixed = r.problems.length - r.remaining;
    lines.push(
      `${r.modelsDir}: ${r.manifests} manifests, ${r.blobs} blobs${verified}: ${r.problems.length} problem(s)` +
        (repair ? `, ${fixed} repaired, ${r.remaining} left` : "; run with --repair to fix them"),
    );
  }
  return lines.join("\n") + "\n";
}
