// Middleware around manifest PUTs that feeds the web catalog: after a manifest is accepted it
// records who pushed it with which key (the account and key fingerprint are in the bearer token the
// push used), then reads the new model's GGUF header and small layers in the background, so the
// model's page is fast on its first view. It never changes or delays the push's response.

import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/env.ts";
import { ANONYMOUS } from "../auth/tokens.ts";
import { verifyTokenCached } from "../auth/verified-tokens.ts";
import { serviceName } from "../middleware/bearer.ts";
import { recordPush, warmFacts } from "../services/catalog.ts";
import { findRepository } from "../services/repositories.ts";

export const recordPushes: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (c.req.method !== "PUT" || c.res.status !== 201) return;
  const digest = c.res.headers.get("docker-content-digest");
  const namespace = c.var.access?.namespace;
  if (!digest || !namespace) return;
  const reg = c.var.registry;
  // A model's first push creates its repository inside the handler, after the access check.
  const repository = c.var.access.repository ?? (await findRepository(reg.db, namespace, c.var.repo.model));
  if (!repository) return;
  const ref = c.req.param("ref") ?? "";
  let keyFingerprint: string | null = null;
  let account: string | null = c.var.subject && c.var.subject !== ANONYMOUS ? c.var.subject : null;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
  if (bearer) {
    const claims = await verifyTokenCached(reg, serviceName(c), bearer[1]!);
    if (!("error" in claims)) {
      keyFingerprint = claims.key ?? null;
      if (claims.sub !== ANONYMOUS) account = claims.sub;
    }
  }
  try {
    await recordPush(reg.db, { repositoryId: repository.id, tag: ref.includes(":") ? null : ref, manifestDigest: digest, account, keyFingerprint });
  } catch (e) {
    // The push itself succeeded; a lost record only leaves the catalog's "last push" older.
    console.error(`recording the push of ${digest}: ${(e as Error).message}`);
  }
  void warmFacts(reg.db, reg.store, repository.id, digest).catch(() => {
    // Read again when the page is first viewed.
  });
};
