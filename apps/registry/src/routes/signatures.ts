// /v2/<ns>/<model>/signatures/<digest>: publisher signatures of a manifest (docs/protocol.md,
// "Model signatures"). A Corral route beside the distribution API: OCI clients never ask for it.
import { Hono } from "hono";
import { MAX_SIGNATURE_UPLOAD_BYTES } from "@corral/shared/signing";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { readLimited } from "../http/io.ts";
import { requireAction } from "../middleware/require-action.ts";
import { parseDigestParam } from "../services/names.ts";
import { listSignatures, parseSignatureUpload, putSignature } from "../services/signatures.ts";

export const signatureRoutes = new Hono<AppEnv>()
  .get("/:digest", requireAction("pull"), async (c) => {
    const digest = parseDigestParam(c.req.param("digest"));
    const repo = c.var.access.repository;
    if (!repo) throw new RegistryError("NAME_UNKNOWN", `repository ${c.var.repo.path} does not exist`);
    return c.json({ signatures: await listSignatures(c.var.registry.db, repo.id, c.var.repo.path, digest) });
  })
  .put("/:digest", requireAction("push"), async (c) => {
    const digest = parseDigestParam(c.req.param("digest"));
    const { namespace, repository } = c.var.access;
    if (!namespace || !repository) throw new RegistryError("NAME_UNKNOWN", `repository ${c.var.repo.path} does not exist`);
    const upload = parseSignatureUpload(await readLimited(c, MAX_SIGNATURE_UPLOAD_BYTES, "the signature upload"));
    const reg = c.var.registry;
    const account = await putSignature(reg.db, reg.urls, { namespace, repositoryId: repository.id, repository: c.var.repo.path, digest }, upload);
    return c.json({ account }, 201);
  });
