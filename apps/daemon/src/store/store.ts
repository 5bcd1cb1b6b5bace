// The local model store: manifests naming content-addressed blobs. Operations that add or drop
// references (create, copy, delete, prune) run one at a time, so a blob can never be pruned
// between being written and being named by a manifest.

import { copyFile, mkdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { renameDurably } from "@corral/shared/durable-write";
import type { ModelName } from "@corral/shared/name";
import { manifestDigests, type Manifest } from "@corral/shared/manifest";
import { BlobStore } from "./blobs.ts";
import { ManifestStore, type StoredManifest } from "./manifests.ts";
import { SignatureStore, type StoredSignature } from "./signatures.ts";
import { sha256Bytes } from "@corral/shared/digest";

/** The largest text layer the daemon reads into memory; real templates and licences are kilobytes. */
export const MAX_TEXT_LAYER_BYTES = 8 << 20;

/** Unreferenced blobs and stray temporary files younger than this survive a prune (Ollama: 1 hour). */
const PRUNE_GRACE_MS = 60 * 60 * 1000;

export class ModelNotFoundError extends Error {
  constructor(readonly model: string) {
    super(`model '${model}' not found`);
    this.name = "ModelNotFoundError";
  }
}

export class Store {
  readonly blobs: BlobStore;
  readonly manifests: ManifestStore;
  readonly signatures: SignatureStore;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(readonly modelsDir: string) {
    this.blobs = new BlobStore(modelsDir);
    this.manifests = new ManifestStore(modelsDir);
    this.signatures = new SignatureStore(modelsDir);
  }

  async init(): Promise<void> {
    await this.blobs.init();
    await this.manifests.init();
    await this.blobs.migrateLegacyNames();
  }

  /** Runs `fn` after every earlier exclusive operation has finished. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Reads a model after canonicalising its name; undefined when there is none. */
  async find(name: ModelName): Promise<StoredManifest | undefined> {
    return this.manifests.read(await this.manifests.canonicalize(name));
  }

  async get(name: ModelName): Promise<StoredManifest> {
    const m = await this.find(name);
    if (!m) throw new ModelNotFoundError(name.shortest());
    return m;
  }

  /**
   * A text layer (template, system, parameters, licence, messages, config) read whole. Pulled
   * models come from registries, so the size is checked before the bytes are read.
   */
  async readBlobText(digest: string): Promise<string> {
    const path = this.blobs.path(digest);
    const { size } = await stat(path);
    if (size > MAX_TEXT_LAYER_BYTES) throw new Error(`blob ${digest} is ${size} bytes; a model's text layers are limited to ${MAX_TEXT_LAYER_BYTES} bytes`);
    return (await readFile(path)).toString("utf8");
  }

  /** Digests named by any manifest, optionally ignoring one model. */
  async referencedDigests(except?: ModelName): Promise<Set<string>> {
    const refs = new Set<string>();
    for (const m of await this.manifests.list()) {
      if (except && m.name.equals(except)) continue;
      for (const d of manifestDigests(m.manifest)) refs.add(d);
    }
    return refs;
  }

  /** Writes a manifest as the given name; `bytes` must already reference blobs that exist. */
  async putManifest(name: ModelName, bytes: Uint8Array, manifest: Manifest): Promise<void> {
    for (const d of manifestDigests(manifest)) {
      if (!(await this.blobs.has(d))) throw new Error(`cannot write manifest for ${name.shortest()}: blob ${d} is missing`);
    }
    await this.manifests.write(name, bytes);
  }

  /**
   * Names a model with manifest bytes whose blobs are all in the store (a pull's last step). With
   * `prune`, the blobs only the replaced manifest used are removed; `onPrune` hears of it first.
   * `signatures`, when the pull checked them, replace what is kept for the manifest's digest from
   * that host and repository; they are written before the manifest, so a model never appears
   * without the signatures it was pulled with.
   */
  install(name: ModelName, bytes: Uint8Array, manifest: Manifest, o: { prune: boolean; onPrune?: () => void; signatures?: { host: string; repository: string; records: StoredSignature[] } }): Promise<void> {
    return this.exclusive(async () => {
      const target = await this.manifests.canonicalize(name);
      const previous = await this.manifests.read(target).catch(() => undefined);
      const digest = sha256Bytes(bytes);
      if (o.signatures) {
        const { host, repository, records } = o.signatures;
        const same = (r: StoredSignature): boolean => r.host?.toLowerCase() === host.toLowerCase() && r.repository?.toLowerCase() === repository.toLowerCase();
        const kept = (await this.signatures.read(digest)).filter((r) => !same(r));
        await this.signatures.write(digest, [...kept, ...records]);
      }
      await this.putManifest(target, bytes, manifest);
      if (previous && previous.digest !== digest) await this.dropUnreferencedSignatures([previous.digest]);
      if (!previous || !o.prune) return;
      const kept = new Set(manifestDigests(manifest));
      const gone = manifestDigests(previous.manifest).filter((d) => !kept.has(d));
      if (gone.length === 0) return;
      o.onPrune?.();
      await this.dropUnreferenced(gone);
    });
  }

  /** Removes those of `digests` that no manifest references (what a failed pull brought). */
  release(digests: Iterable<string>): Promise<void> {
    return this.exclusive(() => this.dropUnreferenced(digests));
  }

  /** Copies the manifest bytes verbatim, so the copy has the same identity (docs/store-layout.md, "Copy and delete"). */
  copy(src: ModelName, dst: ModelName): Promise<void> {
    return this.exclusive(async () => {
      const from = await this.manifests.canonicalize(src);
      const to = await this.manifests.canonicalize(dst);
      const fromPath = this.manifests.path(from);
      try {
        if (!(await stat(fromPath)).isFile()) throw new Error();
      } catch {
        throw new ModelNotFoundError(src.shortest());
      }
      if (from.equals(to)) return;
      const toPath = this.manifests.path(to);
      await mkdir(dirname(toPath), { recursive: true, mode: 0o755 });
      const tmp = join(dirname(toPath), `.tmp-${randomBytes(8).toString("hex")}`);
      try {
        await copyFile(fromPath, tmp);
        await renameDurably(tmp, toPath);
      } finally {
        await rm(tmp, { force: true });
      }
    });
  }

  /** Removes a model and every blob that no remaining manifest references. */
  delete(name: ModelName): Promise<void> {
    return this.exclusive(async () => {
      const canonical = await this.manifests.canonicalize(name);
      const stored = await this.manifests.read(canonical).catch(() => undefined);
      if (!(await this.manifests.remove(canonical))) throw new ModelNotFoundError(name.shortest());
      if (stored) await this.dropUnreferenced(manifestDigests(stored.manifest));
      if (stored) await this.dropUnreferencedSignatures([stored.digest]);
    });
  }

  /** Deletes those of `digests` that no manifest references. Call inside `exclusive`. */
  async dropUnreferenced(digests: Iterable<string>): Promise<void> {
    const refs = await this.referencedDigests();
    for (const d of new Set(digests)) if (!refs.has(d)) await this.blobs.remove(d);
  }

  /** Removes the signature files of those manifest digests that no model has any more. Call inside `exclusive`. */
  private async dropUnreferencedSignatures(digests: Iterable<string>): Promise<void> {
    const named = new Set((await this.manifests.list()).map((m) => m.digest));
    for (const d of new Set(digests)) if (!named.has(d)) await this.signatures.remove(d);
  }

  /**
   * Start-up maintenance (docs/store-layout.md, "Start-up pruning"): unless a manifest cannot be read, delete stray files and
   * unreferenced blobs older than the grace period.
   */
  prune(now = Date.now()): Promise<{ removed: string[] }> {
    return this.exclusive(async () => {
      let broken = false;
      const manifests = await this.manifests.list(() => {
        broken = true;
      });
      const removed: string[] = [];
      if (broken) return { removed };
      const refs = new Set<string>();
      for (const m of manifests) for (const d of manifestDigests(m.manifest)) refs.add(d);
      for (const e of await this.blobs.entries()) {
        if (now - e.mtimeMs < PRUNE_GRACE_MS) continue;
        if (e.digest && refs.has(e.digest)) continue;
        await this.blobs.removeFile(e.name);
        removed.push(e.name);
      }
      // Signatures of manifests no model has, and temporary files a crash left among them.
      const named = new Set(manifests.map((m) => m.digest));
      const signatures = await this.signatures.entries();
      for (const d of signatures.digests) if (!named.has(d)) await this.signatures.remove(d);
      for (const n of signatures.strays) if (n.startsWith(".tmp-")) await this.signatures.removeStray(n);
      return { removed };
    });
  }
}
