// /admin: the JSON admin API, the same operations as the admin CLI. It takes the admin token as
// `Authorization: Bearer <token>` (REGISTRY_ADMIN_TOKEN, or the one `serve` writes to the data directory).

import { timingSafeEqual } from "node:crypto";
import { Hono, type Context } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { readLimited } from "../http/io.ts";
import { serviceName } from "../middleware/bearer.ts";
import { directAdmin } from "../services/admin.ts";
import { fsckRegistry } from "../services/fsck.ts";

async function json(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  const body = await readLimited(c, 64 * 1024, "the request body");
  if (body.length === 0) return {};
  try {
    const v = JSON.parse(body.toString("utf8")) as unknown;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new RegistryError("INVALID_REQUEST", "the request body must be a JSON object");
}

function str(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== "string" || v === "") throw new RegistryError("INVALID_REQUEST", `field "${field}": expected a non-empty string`);
  return v;
}

function strings(body: Record<string, unknown>, field: string): string[] {
  const v = body[field];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new RegistryError("INVALID_REQUEST", `field "${field}": expected an array of strings`);
  return v as string[];
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function adminRoutes(adminToken: string): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("*", async (c, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "");
    if (!m || !sameSecret(m[1]!, adminToken)) throw new RegistryError("UNAUTHORIZED", "the admin API needs the admin token as a Bearer token");
    await next();
  });
  const ops = (c: Context<AppEnv>) => directAdmin(c.var.registry);
  app.get("/health", (c) => c.json({ ok: true, pid: process.pid, database: c.var.registry.dbKind, store: c.var.registry.store.kind }));
  app.get("/users", async (c) => c.json(await ops(c).listUsers()));
  app.post("/users", async (c) => {
    const b = await json(c);
    return c.json(await ops(c).addUser(str(b, "name"), strings(b, "keys")), 201);
  });
  app.post("/users/:name/keys", async (c) => c.json(await ops(c).addKey(c.req.param("name"), str(await json(c), "key")), 201));
  app.delete("/users/:name/keys", async (c) => c.json(await ops(c).removeKey(c.req.param("name"), str(await json(c), "key"))));
  app.post("/orgs", async (c) => {
    const b = await json(c);
    return c.json(await ops(c).createOrg(str(b, "name"), str(b, "owner")), 201);
  });
  app.post("/orgs/:org/members", async (c) => {
    const b = await json(c);
    return c.json(await ops(c).addMember(c.req.param("org"), str(b, "user"), str(b, "role")));
  });
  app.post("/namespaces/:ns/grants", async (c) => {
    const b = await json(c);
    return c.json(await ops(c).grant(c.req.param("ns"), str(b, "user"), str(b, "role")));
  });
  app.put("/repositories/:ns/:model/visibility", async (c) => {
    const b = await json(c);
    return c.json(await ops(c).setVisibility(`${c.req.param("ns")}/${c.req.param("model")}`, str(b, "visibility")));
  });
  app.post("/gc", async (c) => c.json(await ops(c).gc((await json(c))["dryRun"] === true)));
  app.post("/fsck", async (c) => {
    const b = await json(c);
    const reg = c.var.registry;
    return c.json(await fsckRegistry(reg, { repair: b["repair"] === true, quick: b["quick"] === true, graceSeconds: reg.config.gcGraceSeconds }));
  });
  // Progress as NDJSON while the model's blobs arrive; a failure after the first line is an {"error"} line.
  app.post("/mirror/warm", async (c) => {
    const name = str(await json(c), "name");
    const reg = c.var.registry;
    const { warmMirror } = await import("../mirror/warm.ts");
    const enc = new TextEncoder();
    // The answer's status waits for the first event, so a name that cannot be warmed is a plain error.
    let settle: ((e?: unknown) => void) | undefined;
    const ready = new Promise<unknown>((r) => (settle = r));
    const once = (e?: unknown): boolean => {
      const s = settle;
      settle = undefined;
      s?.(e);
      return s !== undefined;
    };
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        warmMirror(reg, name, (e) => {
          once();
          ctl.enqueue(enc.encode(`${JSON.stringify(e)}\n`));
        })
          .catch((e: unknown) => {
            if (!once(e)) ctl.enqueue(enc.encode(`${JSON.stringify({ error: e instanceof Error ? e.message : String(e) })}\n`));
          })
          .finally(() => {
            once();
            ctl.close();
          });
      },
    });
    const failed = await ready;
    if (failed) throw failed;
    return c.body(body, 200, { "Content-Type": "application/x-ndjson" });
  });
  app.post("/tokens", async (c) => {
    const b = await json(c);
    const service = typeof b["service"] === "string" && b["service"] ? b["service"] : serviceName(c);
    return c.json(await ops(c).token(str(b, "user"), strings(b, "scopes"), service), 201);
  });
  return app;
}
