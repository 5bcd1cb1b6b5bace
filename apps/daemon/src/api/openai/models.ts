// GET /v1/models and /v1/models/:model from the native model list (docs/daemon.md, "Model operations" and "OpenAI-compatible endpoints"): the id is the
// model's name, `created` its manifest time and `owned_by` its namespace.

import { ModelName } from "@corral/shared/name";
import { StatusError } from "../../errors.ts";
import { unixSeconds, type NativeTagsResponse } from "./native.ts";

export interface OpenAIModel {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

export interface ModelList {
  object: "list";
  data: OpenAIModel[];
}

const modelOf = (id: string, modifiedAt: string | undefined): OpenAIModel => ({
  id,
  object: "model",
  created: unixSeconds(modifiedAt),
  owned_by: ModelName.parse(id).namespace,
});

export function modelList(tags: NativeTagsResponse): ModelList {
  return {
    object: "list",
    data: (tags.models ?? []).map((m) => modelOf(m.model || m.name || "", m.modified_at)),
  };
}

/**
 * The model named `id` (a missing tag means `latest`, and case does not matter, as for every model
 * name), answered under the id as given; 404 in /api/show's words when it is not installed.
 */
export function findModel(tags: NativeTagsResponse, id: string): OpenAIModel {
  const wanted = ModelName.parse(id);
  if (!wanted.isValid()) throw new StatusError(400, "invalid model name");
  const found = (tags.models ?? []).find((m) => {
    const name = m.model || m.name;
    return name !== undefined && ModelName.parse(name).equalFold(wanted);
  });
  if (!found) throw new StatusError(404, `model '${wanted.shortest()}' not found`);
  return modelOf(id, found.modified_at);
}
