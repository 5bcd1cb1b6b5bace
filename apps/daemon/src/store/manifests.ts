// Manifest files under <models>/manifests/<host>/<namespace>/<model>/<tag> (docs/store-layout.md, "Manifests"). Writes go
// through a temporary file and a rename, so a reader never sees a partial manifest.

import { mkdir, readdir, readFile, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileDurably } from "@corral/shared/durable-write";
import { randomBytes } from "node:crypto";
import { ModelName } from "@corral/shared/name";
import { parseManifest, type Manifest } from "@corral/shared/manifest";
import { sha256Bytes } from "@corral/shared/digest";

export interface StoredManifest {
  name: ModelName;
  manifest: Manifest;
  /** The file's bytes exactly; the model's identity is their sha256. */
  bytes: Buffer;
  /** sha256 of the bytes, `sha256:<hex>`. */
  digest: string;
  modifiedAt: Date;
}

export class ManifestStore {
  readonly dir: string;

  constructor(modelsDir: string) {
    this.dir = join(modelsDir, "manifests");
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
  }

  path(name: ModelName): string {
    return join(this.dir, ...name.manifestSegments());
  }

  async read(name: ModelName): Promise<StoredManifest | undefined> {
    const p = this.path(name);
    let bytes: Buffer;
    let mtime: Date;
    try {
      const st = await stat(p);
      if (!st.isFile()) return undefined;
      mtime = st.mtime;
      bytes = await readFile(p);
    } catch {
      return undefined;
    }
    return { name, manifest: parseManifest(bytes), bytes, digest: sha256Bytes(bytes), modifiedAt: mtime };
  }

  async write(name: ModelName, bytes: Uint8Array): Promise<void> {
    const p = this.path(name);
    await mkdir(dirname(p), { recursive: true, mode: 0o755 });
    await writeFileDurably(p, bytes, { tmp: join(dirname(p), `.tmp-${randomBytes(8).toString("hex")}`) });
  }

  /** Removes a manifest file and the directories it leaves empty. */
  async remove(name: ModelName): Promise<boolean> {
    const p = this.path(name);
    try {
      await rm(p);
    } catch {
      return false;
    }
    await this.pruneEmptyDirs(dirname(p));
    return true;
  }

  private async pruneEmptyDirs(from: string): Promise<void> {
    let dir = from;
    while (dir.startsWith(this.dir + "/") && dir !== this.dir) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
      dir = dirname(dir);
    }
  }

  /**
   * Every model in the store: exactly the files at manifests/* /* /* /* whose four path parts form
   * a valid name. Unparsable manifests are reported through `onInvalid` and skipped.
   */
  async list(onInvalid?: (path: string, err: Error) => void): Promise<StoredManifest[]> {
    const out: StoredManifest[] = [];
    const level = async (dir: string): Promise<string[]> => {
      try {
        return (await readdir(dir, { withFileTypes: true })).filter((d) => !d.name.startsWith(".")).map((d) => d.name);
      } catch {
        return [];
      }
    };
    for (const host of await level(this.dir)) {
      for (const ns of await level(join(this.dir, host))) {
        for (const model of await level(join(this.dir, host, ns))) {
          for (const tag of await level(join(this.dir, host, ns, model))) {
            const name = ModelName.fromParts(host, ns, model, tag);
            if (!name.isValid()) continue;
            try {
              const m = await this.read(name);
              if (m) out.push(m);
            } catch (e) {
              onInvalid?.(join(this.dir, host, ns, model, tag), e as Error);
            }
          }
        }
      }
    }
    return out;
  }

  /**
   * Resolves each part of a requested name against the existing manifests ignoring case, as
   * Ollama does, so `LLAMA3.2` finds a stored `llama3.2`. A new name keeps its spelling.
   */
  async canonicalize(name: ModelName): Promise<ModelName> {
    const pick = async (dir: string, part: string): Promise<string> => {
      try {
        const entries = await readdir(dir);
        if (entries.includes(part)) return part;
        return entries.find((e) => e.toLowerCase() === part.toLowerCase()) ?? part;
      } catch {
        return part;
      }
    };
    const host = await pick(this.dir, name.host);
    const namespace = await pick(join(this.dir, host), name.namespace);
    const model = await pick(join(this.dir, host, namespace), name.model);
    const tag = await pick(join(this.dir, host, namespace, model), name.tag);
    return name.withParts({ host, namespace, model, tag });
  }
}
