// /v2/<ns>/<model>/manifests/<reference>: GET (and HEAD), PUT, DELETE.
import { Hono } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { readLimited } from "../http/io.ts";
import { publicURL } from "../http/public-urls.ts";
import { requireAction } from "../middleware/require-action.ts";
import { manifestDigests } from "@corral/shared/manifest";
import { MAX_MANIFEST_BYTES, deleteManifest, getManifest, putManifest, validateManifest } from "../services/manifests.ts";
import { parseReference } from "../services/names.ts";
import { ensureRepository, findNamespaceAndRepository } from "../services/repositories.ts";
import { mirrorOf } from "../config.ts";
import { mirroredManifest } from "../mirror/manifests.ts";
import { clientAddress } from "../middleware/rate-limit.ts";

export const manifestRoutes = new Hono<AppEnv>()
  .get("/:ref", requireAction("pull"), async (c) => {
    const ref = parseReference(c.req.param("ref"));
    const mirror = mirrorOf(c.var.registry.config, c.var.repo.namespace);
    // A mirrored namespace answers from its cache or its upstream (docs/protocol.md, "Mirrors").
    const mirrored = mirror ? await mirroredManifest(c.var.registry, mirror, { name: c.var.repo, ref, client: clientAddress(c) }) : undefined;
    const repo = mirrored ? (await findNamespaceAndRepository(c.var.registry, c.var.repo)).repository : c.var.access.repository;
    if (!repo) throw new RegistryError("NAME_UNKNOWN", `repository ${c.var.repo.path} does not exist`);
    const m = mirror ? mirrored?.manifest : await getManifest(c.var.registry, repo.id, ref);
    if (!m) throw new RegistryError("MANIFEST_UNKNOWN", `manifest ${c.req.param("ref")} is not in ${c.var.repo.path}`);
    const headers: Record<string, string> = {
      "Content-Type": m.mediaType,
      "Content-Length": String(m.content.length),
      "Docker-Content-Digest": m.digest,
      ETag: `"${m.digest}"`,
    };
    if (mirrored) headers["Corral-Mirror"] = mirrored.outcome === "stale" ? "stale; upstream unreachable" : mirrored.outcome;
    if (c.req.method === "HEAD") return c.body(null, 200, headers);
    // A pull, as the catalog counts them: a GET by tag (a client following an image index fetches
    // its manifests by digest, which would count one pull many times). Counted in memory only.
    if (ref.kind === "tag") c.var.registry.pulls.count(repo.id, ref.tag);
    return c.body(new Uint8Array(m.content), 200, headers);
  })
  .put("/:ref", requireAction("push"), async (c) => {
    const ref = parseReference(c.req.param("ref"));
    const reg = c.var.registry;
    const bytes = await readLimited(c, MAX_MANIFEST_BYTES, "the manifest");
    const namespace = c.var.access.namespace;
    if (!namespace) throw new RegistryError("NAME_UNKNOWN", `namespace ${c.var.repo.namespace} does not exist`);
    const valid = validateManifest(bytes, c.req.header("content-type"));
    if (!c.var.access.repository) {
      // A manifest that cannot be stored must not leave an empty repository behind: a new
      // repository holds no blobs yet, so a manifest naming any is refused before creating it.
      if (ref.kind === "digest" && ref.digest !== valid.digest) throw new RegistryError("DIGEST_INVALID", `the manifest's digest is ${valid.digest}, not ${ref.digest}`);
      const first = manifestDigests(valid.manifest)[0];
      if (first) throw new RegistryError("MANIFEST_BLOB_UNKNOWN", `manifest names blob ${first}, which this repository does not have`).withDetail({ digest: first });
    }
    const repo = c.var.access.repository ?? (await ensureRepository(reg, namespace, c.var.repo.model, reg.config.defaultVisibility));
    const digest = await putManifest(reg, repo.id, { ref, bytes, valid });
    return c.body(null, 201, {
      Location: `${publicURL(c)}/v2/${c.var.repo.path}/manifests/${digest}`,
      "Docker-Content-Digest": digest,
      "Content-Length": "0",
    });
  })
  .delete("/:ref", requireAction("delete"), async (c) => {
    const ref = parseReference(c.req.param("ref"));
    const repo = c.var.access.repository;
    if (!repo) throw new RegistryError("NAME_UNKNOWN", `repository ${c.var.repo.path} does not exist`);
    if (!(await deleteManifest(c.var.registry, repo.id, ref))) {
      throw new RegistryError("MANIFEST_UNKNOWN", `manifest ${c.req.param("ref")} is not in ${c.var.repo.path}`);
    }
    return c.body(null, 202, { "Content-Length": "0" });
  });
