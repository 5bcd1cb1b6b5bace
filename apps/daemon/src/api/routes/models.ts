// The local model list and per-model operations: GET /api/tags, POST /api/show, POST /api/copy,
// DELETE /api/delete (docs/daemon.md, "Model operations").
import { Hono } from "hono";
import { ModelName } from "@corral/shared/name";
import { manifestSize } from "@corral/shared/manifest";
import { digestHex } from "@corral/shared/digest";
import { readGGUFHeader } from "@corral/shared/gguf/index";
import { renderModelfile, renderParameters, showModelfileHeader } from "@corral/shared/modelfile/render";
import type { Store } from "../../store/store.ts";
import { ModelNotFoundError } from "../../store/store.ts";
import { capabilities, modelDetails, modelInfo, readModel, tensorList } from "../../store/model-info.ts";
import { badRequest } from "../../errors.ts";
import { jsonError, modelField, readJSON } from "../respond.ts";
import { formatTime } from "../time.ts";

/** The installed models, newest first, as GET /api/tags lists them (the OpenAI model list reads it too). */
export async function tagList(store: Store) {
  const all = await store.manifests.list();
  all.sort((a, b) => b.modifiedAt.getTime() - a.modifiedAt.getTime());
  const models = [];
  for (const m of all) {
    const contents = await readModel(store, m).catch(() => undefined);
    const short = m.name.shortest();
    models.push({
      name: short,
      model: short,
      modified_at: formatTime(m.modifiedAt),
      size: manifestSize(m.manifest),
      digest: digestHex(m.digest),
      details: contents ? modelDetails(contents) : undefined,
      ...(contents ? { capabilities: capabilities(contents) } : {}),
    });
  }
  return { models };
}

export function modelRoutes(store: Store): Hono {
  const app = new Hono();

  app.get("/api/tags", async (c) => c.json(await tagList(store)));

  app.post("/api/show", async (c) => {
    try {
      const body = await readJSON(c);
      const input = modelField(body);
      if (!input) throw badRequest("model is required");
      const name = ModelName.parse(input);
      if (!name.isValid()) throw badRequest("invalid model name");
      const m = await store.get(name);
      const contents = await readModel(store, m);
      const verbose = body["verbose"] === true;
      const system = typeof body["system"] === "string" && body["system"] ? body["system"] : contents.system;
      const options = typeof body["options"] === "object" && body["options"] !== null ? (body["options"] as Record<string, unknown>) : {};
      const modelfile = renderModelfile({
        header: showModelfileHeader(m.name.shortest()),
        from: contents.modelLayer ? [contents.modelLayer.path] : [],
        adapters: contents.adapters.map((a) => a.path),
        projectors: contents.projectors.map((p) => p.path),
        ...(contents.draft ? { draft: [contents.draft.path] } : {}),
        ...(contents.config.renderer ? { renderer: contents.config.renderer } : {}),
        ...(contents.config.parser ? { parser: contents.config.parser } : {}),
        ...(contents.template !== undefined ? { template: contents.template } : {}),
        ...(system ? { system } : {}),
        parameters: { ...contents.parameters, ...options },
        licenses: contents.licenses,
        messages: contents.messages,
      });
      const out: Record<string, unknown> = {};
      if (contents.licenses.length) out["license"] = contents.licenses.join("\n");
      out["modelfile"] = modelfile;
      const params = renderParameters(contents.parameters);
      if (params) out["parameters"] = params;
      out["template"] = contents.template ?? "{{ .Prompt }}";
      if (system) out["system"] = system;
      out["details"] = modelDetails(contents);
      if (contents.messages.length) out["messages"] = contents.messages;
      out["model_info"] = modelInfo(contents.header, verbose);
      if (contents.projectors[0]) {
        const ph = await readGGUFHeader(contents.projectors[0].path).catch(() => undefined);
        if (ph) out["projector_info"] = modelInfo(ph, verbose);
      }
      if (contents.header) out["tensors"] = tensorList(contents.header);
      out["capabilities"] = capabilities(contents);
      out["modified_at"] = formatTime(m.modifiedAt);
      // A model's renderer and parser appear only in the Modelfile text, its requires only here,
      // as Ollama's show reports them (docs/daemon.md, "Model operations").
      if (contents.config.requires) out["requires"] = contents.config.requires;
      // Who published these bytes, as verified at pull and checked again now (docs/daemon.md, "Model operations").
      const signed = await store.signatures.verified(m.digest);
      if (signed.length) {
        out["signatures"] = signed.map((r) => ({ account: r.account, fingerprint: r.fingerprint, key: r.key, name: `${r.host}/${r.repository}`, signed_at: r.signed_at, verified_at: r.verified_at }));
      }
      return c.json(out);
    } catch (e) {
      if (e instanceof ModelNotFoundError) return c.json({ error: e.message }, 404);
      return jsonError(c, e);
    }
  });

  app.post("/api/copy", async (c) => {
    try {
      const body = await readJSON(c);
      const source = typeof body["source"] === "string" ? body["source"] : "";
      const destination = typeof body["destination"] === "string" ? body["destination"] : "";
      const src = ModelName.parse(source);
      if (!src.isValid()) throw badRequest(`source "${source}" is invalid`);
      const dst = ModelName.parse(destination);
      if (!dst.isValid()) throw badRequest(`destination "${destination}" is invalid`);
      try {
        await store.copy(src, dst);
      } catch (e) {
        if (e instanceof ModelNotFoundError) return c.json({ error: `model "${source}" not found` }, 404);
        throw e;
      }
      return c.body(null, 200);
    } catch (e) {
      return jsonError(c, e);
    }
  });

  app.delete("/api/delete", async (c) => {
    try {
      const body = await readJSON(c);
      const input = modelField(body);
      const name = ModelName.parse(input);
      if (!name.isValid()) throw badRequest(`name "${input}" is invalid`);
      try {
        await store.delete(name);
      } catch (e) {
        if (e instanceof ModelNotFoundError) return c.json({ error: `model '${input}' not found` }, 404);
        throw e;
      }
      return c.body(null, 200);
    } catch (e) {
      return jsonError(c, e);
    }
  });

  return app;
}
