// GET /v2/<ns>/<model>/tags/list
import { Hono } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { requireAction } from "../middleware/require-action.ts";
import { listTags } from "../services/manifests.ts";
import { nextLink, pageParams } from "./pagination.ts";

export const tagsList = new Hono<AppEnv>().get("/list", requireAction("pull"), async (c) => {
  const repo = c.var.access.repository;
  if (!repo) throw new RegistryError("NAME_UNKNOWN", `repository ${c.var.repo.path} does not exist`);
  const { n, last } = pageParams(c);
  const tags = n === 0 ? [] : await listTags(c.var.registry.db, repo.id, n, last);
  return c.json({ name: c.var.repo.path, tags }, 200, nextLink(c, tags, n));
});
