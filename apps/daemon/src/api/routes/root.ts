// GET/HEAD / (the CLI's heartbeat) and /api/version.
import { Hono } from "hono";
import { VERSION } from "../../version.ts";

export function rootRoutes(): Hono {
  const app = new Hono();
  // Hono answers HEAD with the GET route minus its body.
  app.get("/", (c) => c.text("Corral is running"));
  app.get("/api/version", (c) => c.json({ version: VERSION }));
  return app;
}
