// `corral push` / POST /api/push (docs/protocol.md, "Push"): every blob the registry lacks is mounted or uploaded,
// then the manifest is sent (re-serialised, as Ollama does).

import { shortDigest } from "@corral/shared/digest";
import { goJSON } from "@corral/shared/gojson";
import { MediaType, type Manifest } from "@corral/shared/manifest";
import type { ModelName } from "@corral/shared/name";
import { StatusError, type Progress } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { NotFoundError, RegistryError, RegistrySession, type Signer } from "./session.ts";
import { uploadBlob } from "./upload.ts";
import { forEachLimit } from "./parts.ts";

export interface PushOptions {
  insecure: boolean;
  signer: Signer | undefined;
  signal?: AbortSignal;
}

/** The manifest as sent: Go's json.Marshal of the parsed manifest (no trailing newline). */
export function pushBytes(m: Manifest): Buffer {
  const layer = (d: Manifest["config"]) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.from ? { from: d.from } : {}), ...(d.name ? { name: d.name } : {}) });
  return Buffer.from(goJSON({ schemaVersion: m.schemaVersion, mediaType: m.mediaType, config: layer(m.config), layers: m.layers.map(layer) }));
}

export async function pushModel(store: Store, name: ModelName, o: PushOptions, progress: (p: Progress) => void): Promise<void> {
  progress({ status: "retrieving manifest" });
  const stored = await store.find(name);
  if (!stored) {
    progress({ status: "couldn't retrieve manifest" });
    throw new StatusError(404, `model '${name.shortest()}' not found`);
  }
  const session = new RegistrySession(name, o.insecure, o.signer);
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
      body: () => pushBytes(m),
      ...s,
    });
    res.discard();
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
