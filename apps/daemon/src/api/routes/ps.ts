// GET /api/ps (docs/daemon.md, "Model operations"): the models loaded now, latest expiry first.
import { Hono } from "hono";
import { digestHex } from "@corral/shared/digest";
import type { Scheduler } from "../../runner/scheduler.ts";
import { formatTime } from "../time.ts";
import { vramBytes } from "../../runner/gpu-placement.ts";

export function psRoutes(scheduler: Scheduler): Hono {
  const app = new Hono();
  app.get("/api/ps", (c) => {
    const runners = scheduler.list().sort((a, b) => b.expiresAt.getTime() - a.expiresAt.getTime());
    const models = runners.map((r) => {
      // Weights and the KV cache; on a GPU backend the offloaded layers' share of them is in
      // GPU memory (docs/daemon.md, "GPUs").
      const size = r.spec.sizeBytes + r.context.stateSize;
      return {
        name: r.spec.name,
        model: r.spec.name,
        size,
        digest: digestHex(r.spec.digest),
        // Ollama's ModelDetails, parent_model included ("" when the model was not made from another).
        details: r.spec.details,
        expires_at: formatTime(r.expiresAt),
        size_vram: vramBytes(size, r.model.gpuLayers, r.model.fileInsights.totalLayers),
        context_length: r.spec.numCtx,
      };
    });
    return c.json({ models });
  });
  return app;
}
