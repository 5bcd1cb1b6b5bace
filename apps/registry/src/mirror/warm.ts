// `corral-registry mirror warm NAMESPACE/MODEL[:TAG]`: fetches a mirrored model's manifest and
// every blob it names ahead of the first pull, through the same single-flight downloads a pull uses
// (docs/protocol.md, "Mirrors").

import { mirrorOf } from "../config.ts";
import { AdminError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import { parseReference, parseRepoName, splitRepoPath } from "../services/names.ts";
import { findNamespaceAndRepository } from "../services/repositories.ts";
import { readManifest } from "@corral/shared/manifest";
import { fetchMirroredBlob, findMirroredBlob } from "./blobs.ts";
import { mirroredManifest, promoteIfComplete } from "./manifests.ts";

export type WarmEvent =
  | { status: "manifest"; name: string; digest: string; outcome: string }
  | { status: "blob"; digest: string; total: number; completed: number; state: "present" | "fetching" | "stored" }
  | { status: "success"; name: string; digest: string; blobs: number; fetched: number; bytes: number };

/** How often a long download reports its progress. */
const PROGRESS_MS = 2000;

export async function warmMirror(reg: Registry, text: string, emit: (e: WarmEvent) => void): Promise<void> {
  const colon = text.lastIndexOf(":");
  const [path, tag] = colon > text.lastIndexOf("/") ? [text.slice(0, colon), text.slice(colon + 1)] : [text, "latest"];
  const parts = splitRepoPath(path);
  if (!parts) throw new AdminError("INVALID_REQUEST", `invalid model "${text}": expected namespace/model[:tag]`);
  const name = parseRepoName(parts.namespace, parts.model);
  const ref = parseReference(tag);
  const mirror = mirrorOf(reg.config, name.namespace);
  if (!mirror) throw new AdminError("INVALID_REQUEST", `${name.namespace} is not a mirrored namespace; REGISTRY_MIRRORS names ${reg.config.mirrors.map((m) => m.namespace).join(", ") || "none"}`);
  const shown = `${name.path}:${tag}`;
  const found = await mirroredManifest(reg, mirror, { name, ref });
  if (!found) throw new AdminError("NOT_FOUND", `${shown} is not known to ${mirror.host}`);
  emit({ status: "manifest", name: shown, digest: found.manifest.digest, outcome: found.outcome });
  const repo = (await findNamespaceAndRepository(reg, name)).repository;
  if (!repo) throw new Error(`${name.path} was not created`);
  const { manifest } = readManifest(found.manifest.content);
  const descriptors = [...(manifest.config.digest ? [manifest.config] : []), ...manifest.layers];
  let fetched = 0;
  let bytes = 0;
  for (const d of descriptors) {
    const here = await findMirroredBlob(reg, repo.id, d.digest);
    if (!here) throw new Error(`blob ${d.digest} is not named by the mirrored manifest`);
    bytes += d.size;
    if (here.stored) {
      emit({ status: "blob", digest: d.digest, total: d.size, completed: d.size, state: "present" });
      continue;
    }
    const f = fetchMirroredBlob(reg, mirror, { id: repo.id, path: name.path }, d);
    emit({ status: "blob", digest: d.digest, total: d.size, completed: f.bytesReceived, state: "fetching" });
    const timer = setInterval(() => emit({ status: "blob", digest: d.digest, total: d.size, completed: f.bytesReceived, state: "fetching" }), PROGRESS_MS);
    try {
      await f.finished;
    } finally {
      clearInterval(timer);
    }
    fetched++;
    emit({ status: "blob", digest: d.digest, total: d.size, completed: d.size, state: "stored" });
  }
  await promoteIfComplete(reg, repo.id, found.manifest.digest, ref.kind === "tag" ? ref.tag : undefined);
  emit({ status: "success", name: shown, digest: found.manifest.digest, blobs: descriptors.length, fetched, bytes });
}
