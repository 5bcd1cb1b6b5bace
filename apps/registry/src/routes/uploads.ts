// /v2/<ns>/<model>/blobs/uploads/[<id>]: start (with cross-repository mount or a monolithic body),
// status, chunks (Ollama's `Content-Range: a-b` and the OCI `bytes a-b` form), finish, cancel.

import { Hono, type Context } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { contentLength, discardBody, requestBody } from "../http/io.ts";
import { publicURL } from "../http/public-urls.ts";
import { requireAction } from "../middleware/require-action.ts";
import { findLinkedBlob } from "../services/blobs.ts";
import { findAccount } from "../services/accounts.ts";
import { ANONYMOUS } from "../auth/tokens.ts";
import { parseDigestParam, parseRepoPath } from "../services/names.ts";
import { accessTo, ensureRepository, type Repository } from "../services/repositories.ts";
import {
  appendChunk,
  cancelUpload,
  ensureUploadRoom,
  findUpload,
  finishUpload,
  rangeHeaders,
  recordBlob,
  startUpload,
  type UploadOpener,
  type UploadRow,
} from "../services/uploads.ts";

function uploadURL(c: Context<AppEnv>, id: string): string {
  return `${publicURL(c)}/v2/${c.var.repo.path}/blobs/uploads/${id}`;
}

function blobURL(c: Context<AppEnv>, digest: string): string {
  return `${publicURL(c)}/v2/${c.var.repo.path}/blobs/${digest}`;
}

function sessionHeaders(c: Context<AppEnv>, row: UploadRow): Record<string, string> {
  const location = uploadURL(c, row.id);
  return {
    Location: location,
    // Ollama's client takes the next URL from here when it prefers redirects (docs/protocol.md, "Uploading a blob").
    "Docker-Upload-Location": location,
    "Docker-Upload-UUID": row.id,
    "Content-Length": "0",
    ...rangeHeaders(row.size),
  };
}

function created(c: Context<AppEnv>, digest: string): Response {
  return c.body(null, 201, { Location: blobURL(c, digest), "Docker-Content-Digest": digest, "Content-Length": "0" });
}

async function targetRepository(c: Context<AppEnv>): Promise<Repository> {
  const namespace = c.var.access.namespace;
  if (!namespace) throw new RegistryError("NAME_UNKNOWN", `namespace ${c.var.repo.namespace} does not exist`);
  const reg = c.var.registry;
  return c.var.access.repository ?? ensureRepository(reg, namespace, c.var.repo.model, reg.config.defaultVisibility);
}

function existingRepository(c: Context<AppEnv>): Repository {
  const repo = c.var.access.repository;
  if (!repo) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `no uploads are open in ${c.var.repo.path}`);
  return repo;
}

/** Cross-repository mount: only from a repository the caller may pull that holds the blob. */
async function tryMount(c: Context<AppEnv>, repo: Repository, mount: string, from: string): Promise<string | undefined> {
  const digest = parseDigestParam(mount);
  let source;
  try {
    source = parseRepoPath(from);
  } catch {
    return undefined; // Ollama may send a file name as `from` (docs/protocol.md, "OCI distribution extras"): fall back to an upload.
  }
  const reg = c.var.registry;
  const sub = c.var.subject;
  const account = sub && sub !== ANONYMOUS ? await findAccount(reg.db, sub) : undefined;
  const access = await accessTo(reg.db, account, source);
  if (!access.repository || !access.actions.has("pull")) return undefined;
  const blob = await findLinkedBlob(reg, access.repository.id, digest);
  if (!blob) return undefined;
  await recordBlob(reg, repo.id, digest, blob.size);
  return digest;
}

/** `a-b` or `bytes a-b`; the start must be where the upload stands. */
function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(?:bytes\s+)?(\d{1,16})-(\d{1,16})\s*$/.exec(header);
  if (!m) throw new RegistryError("RANGE_INVALID", `invalid Content-Range ${JSON.stringify(header.slice(0, 60))}: expected <start>-<end>`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new RegistryError("RANGE_INVALID", `invalid Content-Range ${header}: the end is before the start`);
  return { start, end };
}

function hasBody(c: Context<AppEnv>): boolean {
  const len = contentLength(c);
  return (len !== undefined && len > 0) || c.req.header("transfer-encoding") !== undefined;
}

/** The account opening a session, and the limits that apply to it. */
async function uploadOpener(c: Context<AppEnv>): Promise<UploadOpener> {
  const reg = c.var.registry;
  const sub = c.var.subject;
  // requireAction("push") already refuses anonymous callers (they are never granted push); a
  // session always belongs to an account, since the limit is counted per account.
  if (!sub || sub === ANONYMOUS) throw new RegistryError("UNAUTHORIZED", "authentication required to upload");
  const account = await findAccount(reg.db, sub);
  if (!account) throw new RegistryError("DENIED", `account ${sub} no longer exists`);
  return { accountId: account.id, accountName: account.name, limit: reg.config.uploadLimit, ttlSeconds: reg.config.uploadTTLSeconds };
}

export const uploadRoutes = new Hono<AppEnv>();

const start = async (c: Context<AppEnv>): Promise<Response> => {
  const reg = c.var.registry;
  // Parameters are checked before the repository is created, so a refused request leaves nothing.
  const digestParam = c.req.query("digest");
  const digest = digestParam !== undefined ? parseDigestParam(digestParam) : undefined;
  const mount = c.req.query("mount");
  const from = c.req.query("from");
  if (mount && from) parseDigestParam(mount);
  const opener = await uploadOpener(c);
  // A mount needs no session; one that falls back to an upload is held to the limit by startUpload.
  if (!(mount && from)) await ensureUploadRoom(reg.db, reg.store, reg.hashes, opener);
  const repo = await targetRepository(c);
  if (mount && from) {
    const mounted = await tryMount(c, repo, mount, from);
    if (mounted) {
      await discardBody(c);
      return created(c, mounted);
    }
  }
  const row = await startUpload(reg, repo.id, opener);
  if (digest) {
    // Monolithic upload: the whole blob is the body of the POST.
    try {
      await appendChunk(reg, row, { offset: 0, body: requestBody(c), length: contentLength(c), ttlSeconds: reg.config.uploadTTLSeconds });
      await finishUpload(reg, row, digest);
    } catch (e) {
      await cancelUpload(reg.db, reg.store, reg.hashes, row).catch(() => {});
      throw e;
    }
    return created(c, digest);
  }
  await discardBody(c);
  return c.body(null, 202, sessionHeaders(c, row));
};

uploadRoutes.post("/", requireAction("push"), start);

uploadRoutes.get("/:id", requireAction("push"), async (c) => {
  const row = await findUpload(c.var.registry.db, existingRepository(c).id, c.req.param("id"));
  return c.body(null, 204, sessionHeaders(c, row));
});

uploadRoutes.patch("/:id", requireAction("push"), async (c) => {
  const reg = c.var.registry;
  const row = await findUpload(reg.db, existingRepository(c).id, c.req.param("id"));
  const range = parseContentRange(c.req.header("content-range"));
  let length = contentLength(c);
  if (range) {
    const rangeLength = range.end - range.start + 1;
    if (length !== undefined && length !== rangeLength) {
      throw new RegistryError("RANGE_INVALID", `Content-Range covers ${rangeLength} bytes but Content-Length is ${length}`).withHeaders(rangeHeaders(row.size));
    }
    if (range.start !== row.size) {
      throw new RegistryError("RANGE_INVALID", `chunk starts at ${range.start} but the upload has ${row.size} bytes`).withHeaders(rangeHeaders(row.size));
    }
    length = rangeLength;
  }
  await appendChunk(reg, row, { offset: row.size, body: requestBody(c), length, ttlSeconds: reg.config.uploadTTLSeconds });
  return c.body(null, 202, sessionHeaders(c, row));
});

uploadRoutes.put("/:id", requireAction("push"), async (c) => {
  const reg = c.var.registry;
  const row = await findUpload(reg.db, existingRepository(c).id, c.req.param("id"));
  const digestParam = c.req.query("digest");
  if (!digestParam) throw new RegistryError("DIGEST_INVALID", "the final PUT needs ?digest=sha256:<hex>");
  const digest = parseDigestParam(digestParam);
  if (hasBody(c)) await appendChunk(reg, row, { offset: row.size, body: requestBody(c), length: contentLength(c), ttlSeconds: reg.config.uploadTTLSeconds });
  await finishUpload(reg, row, digest);
  return created(c, digest);
});

uploadRoutes.delete("/:id", requireAction("push"), async (c) => {
  const reg = c.var.registry;
  const row = await findUpload(reg.db, existingRepository(c).id, c.req.param("id"));
  await cancelUpload(reg.db, reg.store, reg.hashes, row);
  return c.body(null, 204);
});
