// `corral push` / POST /api/push (docs/protocol.md, "Push"): every blob the registry lacks is mounted or uploaded,
// then the manifest is sent as the local file's bytes, so that the model's ID (their sha256) is the
// same for the pusher and everyone who pulls it (Ollama re-serialises it, and its IDs differ).

import { shortDigest } from "@corral/shared/digest";
import { MediaType } from "@corral/shared/manifest";
import type { ModelName } from "@corral/shared/name";
import { StatusError, type Progress } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { NotFoundError, RegistryError, RegistrySession, type Signer } from "./session.ts";
import { uploadBlob } from "./upload.ts";
import { forEachLimit } from "./parts.ts";
import { uploadSignature } from "./publisher-signatures.ts";

export interface PushOptions {
  insecure: boolean;
  signer: Signer | undefined;
  signal?: AbortSignal;
}

export async function pushModel(store: Store, name: ModelName, o: PushOptions, progress: (p: Progress) => void): Promise<void> {
  progress({ status: "retrieving manifest" });
  const stored = await store.find(name);
  if (!stored) {
    progress({ status: "couldn't retrieve manifest" });
    throw new StatusError(404, `model '${name.shortest()}' not found`);
  }
  const session = new RegistrySession(name, o.insecure, o.signer, "push");
  const s = o.signal ? { signal: o.signal } : {};
  const m = stored.manifest;
  const blobs = [...m.layers, ...(m.config.digest ? [m.config] : [])];
  try {
    await forEachLimit(blobs, 4, async (layer) => {
      const status = `pushing ${shortDigest(layer.digest)}`;
      try {
        const head = await session.request("HEAD", session.url(`/blobs/${layer.digest}`), s);
        head.discard();
        progress({ status, digest: layer.digest, total: layer.size, completed: layer.size });
        return;
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
      }
      let last = 0;
      await uploadBlob({
        session,
        digest: layer.digest,
        size: layer.size,
        path: store.blobs.path(layer.digest),
        ...(layer.from ? { from: layer.from } : {}),
        onProgress: (c, t) => {
          const now = Date.now();
          if (now - last < 60 && c < t) return;
          last = now;
          progress({ status, digest: layer.digest, total: t, completed: c });
        },
        ...s,
      });
    });
    progress({ status: "pushing manifest" });
    const res = await session.request("PUT", session.url(`/manifests/${name.tag}`), {
      headers: { "Content-Type": m.mediaType || MediaType.manifestV2 },
      // The local file's bytes exactly, so the model has one ID (their sha256) wherever it is pulled.
      body: () => stored.bytes,
      ...s,
    });
    res.discard();
    await uploadSignature(session, { signer: o.signer, digest: stored.digest, signal: o.signal }, progress);
  } catch (e) {
    if (e instanceof RegistryError && (e.status === 401 || e.status === 403)) {
      const key = o.signer?.publicKeyLine();
      throw new StatusError(
        401,
        `you are not authorized to push to ${name.host}/${name.repository()} (${e.message}). ` +
          `Ask an admin of ${name.host} to register this machine's key and give it write access to the "${name.namespace}" namespace` +
          (key ? `; the key (corral key prints it) is: ${key}` : ""),
      );
    }
    if (e instanceof NotFoundError) throw new StatusError(404, `push: the registry answered 404: ${e.message}`);
    throw e;
  }
  progress({ status: "success" });
}
