// GET /api/ps (docs/daemon.md, "Model operations"): the models loaded now, latest expiry first.
import { Hono } from "hono";
import { digestHex } from "@corral/shared/digest";
import type { Scheduler } from "../../runner/scheduler.ts";
import { formatTime } from "../time.ts";

export function psRoutes(scheduler: Scheduler): Hono {
  const app = new Hono();
  app.get("/api/ps", (c) => {
    const runners = scheduler.list().sort((a, b) => b.expiresAt.getTime() - a.expiresAt.getTime());
    const models = runners.map((r) => {
      // Weights are memory-mapped and the KV cache sits beside them; this runtime is CPU only.
      const size = r.spec.sizeBytes + r.context.stateSize;
      return {
        name: r.spec.name,
        model: r.spec.name,
        size,
        digest: digestHex(r.spec.digest),
        // Ollama's ModelDetails, parent_model included ("" when the model was not made from another).
        details: r.spec.details,
        expires_at: formatTime(r.expiresAt),
        size_vram: 0,
        context_length: r.spec.numCtx,
      };
    });
    return c.json({ models });
  });
  return app;
}
