// POST /api/pull and POST /api/push (docs/daemon.md, "Model operations"): streamed progress of the registry client.
import { Hono } from "hono";
import { ModelName } from "@corral/shared/name";
import type { Store } from "../../store/store.ts";
import type { Signer } from "../../registry-client/session.ts";
import { pullModel } from "../../registry-client/pull.ts";
import { pushModel } from "../../registry-client/push.ts";
import { StatusError, type Progress } from "../../errors.ts";
import { jsonError, modelField, progressResponse, readJSON } from "../respond.ts";
import type { VerifyPolicy } from "../../config.ts";

export interface TransferOptions {
  store: Store;
  signer: () => Promise<Signer | undefined>;
  noPrune: boolean;
  /** CORRAL_VERIFY for pulls. */
  verify: VerifyPolicy;
}

export function transferRoutes(o: TransferOptions): Hono {
  const app = new Hono();

  app.post("/api/pull", async (c) => {
    let body: Record<string, unknown>;
    let name: ModelName;
    try {
      body = await readJSON(c);
      name = ModelName.parse(modelField(body));
      if (!modelField(body) || !name.isValid()) throw new StatusError(400, "invalid model name");
    } catch (e) {
      return jsonError(c, e);
    }
    const insecure = body["insecure"] === true;
    return progressResponse<Progress>(c, body["stream"] !== false, async (emit, signal) =>
      pullModel(o.store, name, { insecure, signer: await o.signer(), noPrune: o.noPrune, verify: o.verify, signal }, emit),
    );
  });

  app.post("/api/push", async (c) => {
    let body: Record<string, unknown>;
    let name: ModelName;
    try {
      body = await readJSON(c);
      if (!modelField(body)) throw new StatusError(400, "model is required");
      name = ModelName.parse(modelField(body));
      if (!name.isValid()) throw new StatusError(400, "invalid model name");
    } catch (e) {
      return jsonError(c, e);
    }
    const insecure = body["insecure"] === true;
    return progressResponse<Progress>(c, body["stream"] !== false, async (emit, signal) =>
      pushModel(o.store, name, { insecure, signer: await o.signer(), signal }, emit),
    );
  });

  return app;
}
