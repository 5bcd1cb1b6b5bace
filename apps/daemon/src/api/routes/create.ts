// POST /api/create (docs/daemon.md, "Create").
import { Hono } from "hono";
import type { Store } from "../../store/store.ts";
import { createModel } from "../../create/create-model.ts";
import { parseCreateRequest } from "../../create/request.ts";
import type { Progress } from "../../errors.ts";
import { jsonError, progressResponse, readJSON } from "../respond.ts";

export function createRoutes(store: Store): Hono {
  const app = new Hono();
  app.post("/api/create", async (c) => {
    let parsed;
    try {
      parsed = parseCreateRequest(await readJSON(c));
    } catch (e) {
      return jsonError(c, e);
    }
    const { req, name } = parsed;
    return progressResponse<Progress>(c, req.stream !== false, (emit, signal) => createModel(store, req, { name, progress: emit, signal }));
  });
  return app;
}
