// GET /v2/_catalog: the repositories the caller may pull, paginated.
import { Hono } from "hono";
import type { AppEnv } from "../http/env.ts";
import { accountOf, bearerClaims } from "../middleware/bearer.ts";
import { visibleRepositories } from "../services/repositories.ts";
import { nextLink, pageParams } from "./pagination.ts";

export const catalog = new Hono<AppEnv>().get("/", async (c) => {
  const claims = await bearerClaims(c, "registry:catalog:*");
  const account = await accountOf(c, claims);
  const { n, last } = pageParams(c);
  const repositories = n === 0 ? [] : await visibleRepositories(c.var.registry.db, account, n, last);
  return c.json({ repositories }, 200, nextLink(c, repositories, n));
});
