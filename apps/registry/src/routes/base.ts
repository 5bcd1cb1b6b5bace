// GET /v2/: the API version check every OCI client starts with. Without a valid token it answers
// 401 with the Bearer challenge, which is how Docker-style clients learn where the token realm is
// and that they should send their token at all.
import { Hono } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { bearerClaims, challenge } from "../middleware/bearer.ts";

export const base = new Hono<AppEnv>().get("/", async (c) => {
  const claims = await bearerClaims(c, undefined);
  if (!claims) throw new RegistryError("UNAUTHORIZED", "authentication required").withHeaders(challenge(c, undefined));
  return c.json({}, 200, { "Docker-Distribution-API-Version": "registry/2.0" });
});
