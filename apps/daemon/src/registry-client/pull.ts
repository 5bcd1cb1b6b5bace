// `corral pull` / POST /api/pull (docs/protocol.md, "Pull"): manifest first, then every missing blob (in parallel,
// each in ranged parts), each verified before it becomes visible, and the manifest written last
// with the exact bytes the registry sent. Concurrent pulls of one blob share one download
// (shared-downloads.ts).
// Before any blob, the manifest is read within its size limit and the missing blobs are checked
// against the free space.

import { parseManifest, MAX_MANIFEST_BYTES, MediaType } from "@corral/shared/manifest";
import { sha256Bytes, shortDigest } from "@corral/shared/digest";
import type { ModelName } from "@corral/shared/name";
import { StatusError, type Progress } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { NotFoundError, RegistryError, RegistrySession, type Signer } from "./session.ts";
import { downloadBlob } from "./download.ts";
import { awaitDownload } from "./shared-downloads.ts";
import { rangeFetcher } from "./range-fetcher.ts";
import { forEachLimit } from "./parts.ts";
import { readAtMost } from "./bounded-read.ts";
import { checkFreeSpace } from "./disk-space.ts";
import { verifyPublisher } from "./publisher-signatures.ts";
import type { VerifyPolicy } from "../config.ts";
import type { StoredSignature } from "../store/signatures.ts";

export interface PullOptions {
  insecure: boolean;
  signer: Signer | undefined;
  noPrune: boolean;
  /** CORRAL_VERIFY: what to do about publisher signatures (publisher-signatures.ts). */
  verify: VerifyPolicy;
  signal?: AbortSignal;
}

export async function pullModel(store: Store, name: ModelName, o: PullOptions, progress: (p: Progress) => void): Promise<void> {
  const session = new RegistrySession(name, o.insecure, o.signer);
  const s = o.signal ? { signal: o.signal } : {};
  rangeFetcher.warm();
  progress({ status: "pulling manifest" });
  let bytes: Buffer;
  let claimed: string | undefined;
  try {
    const res = await session.request("GET", session.url(`/manifests/${name.tag}`), {
      headers: { Accept: `${MediaType.manifestV2}, ${MediaType.ociManifest}` },
      ...s,
    });
    const declared = Number(res.headers.get("content-length"));
    if (declared > MAX_MANIFEST_BYTES) {
      res.body.destroy();
      throw new RegistryError(502, `manifest is ${declared} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
    }
    claimed = res.headers.get("docker-content-digest")?.trim() || undefined;
    // Content-Length may be missing or false: the limit holds while the body streams.
    bytes = await readAtMost(res.body, MAX_MANIFEST_BYTES, "a manifest");
  } catch (e) {
    if (e instanceof NotFoundError) throw new StatusError(404, "pull model manifest: file does not exist");
    throw new StatusError(e instanceof RegistryError && e.status === 401 ? 401 : 500, `pull model manifest: ${(e as Error).message}`);
  }
  const manifest = (() => {
    try {
      return parseManifest(bytes);
    } catch (e) {
      throw new StatusError(500, `pull model manifest: ${(e as Error).message}`);
    }
  })();

  // Before any blob: a refused model leaves nothing behind.
  let signatures: StoredSignature[] | undefined;
  if (o.verify !== "off") signatures = await verifyPublisher(session, { digest: sha256Bytes(bytes), claimed, policy: o.verify, signal: o.signal }, progress);

  const blobs = [...manifest.layers, ...(manifest.config.digest ? [manifest.config] : [])];
  await checkFreeSpace(store, name, blobs);
  const fetched: string[] = [];
  try {
    await fetchBlobs();
  } catch (e) {
    // A failed pull leaves the store as it was, except for the part files of an interrupted
    // download, which a later pull resumes from.
    if (!o.signal?.aborted) await store.release(fetched).catch(() => undefined);
    throw e;
  }

  async function fetchBlobs(): Promise<void> {
  await forEachLimit(blobs, 4, async (layer) => {
    const status = `pulling ${shortDigest(layer.digest)}`;
    if (await store.blobs.has(layer.digest)) {
      progress({ status, digest: layer.digest, total: layer.size, completed: layer.size });
      return;
    }
    let last = 0;
    const report = (c: number, t: number): void => {
      const now = Date.now();
      if (now - last < 60 && c < t) return;
      last = now;
      progress({ status, digest: layer.digest, total: t, completed: c });
    };
    await awaitDownload(layer.digest, (r, signal) => downloadBlob({ session, blobs: store.blobs, digest: layer.digest, size: layer.size, onProgress: r, signal }), report, o.signal);
    fetched.push(layer.digest);
    progress({ status, digest: layer.digest, total: layer.size, completed: layer.size });
  });
  }

  progress({ status: "verifying sha256 digest" });
  progress({ status: "writing manifest" });
  await store.install(name, bytes, manifest, {
    prune: !o.noPrune,
    onPrune: () => progress({ status: "removing unused layers" }),
    ...(signatures ? { signatures: { host: name.host, repository: session.repository, records: signatures } } : {}),
  });
  progress({ status: "success" });
}
