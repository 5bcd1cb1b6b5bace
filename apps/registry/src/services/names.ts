// Repository names and references from URL paths, validated with the shared name rules before
// they reach a query, a key or a path. Namespaces and model names are case-insensitive, as in
// Ollama, and kept in lower case; tags keep their case.

import { ModelName } from "@corral/shared/name";
import { isDigest } from "@corral/shared/digest";
import { RegistryError } from "../errors.ts";

export interface RepoName {
  namespace: string;
  model: string;
  /** `namespace/model` */
  path: string;
}

// The shared parser checks whole names; these check one part of a registry path by giving the
// other parts a value that always passes.
const PLACEHOLDER_HOST = "registry";

/** Why `namespace` cannot name a namespace (an account), or undefined when it can. */
export function namespaceProblem(namespace: string): string | undefined {
  return new ModelName({ host: PLACEHOLDER_HOST, namespace, model: "model", tag: "latest" }).problem();
}

/** Why `namespace/model` is not a repository name, or undefined when it is. */
export function repoNameProblem(namespace: string, model: string): string | undefined {
  return new ModelName({ host: PLACEHOLDER_HOST, namespace, model, tag: "latest" }).problem();
}

/** Why `tag` is not a tag, or undefined when it is. */
export function tagProblem(tag: string): string | undefined {
  return new ModelName({ host: PLACEHOLDER_HOST, namespace: "ns", model: "model", tag }).problem();
}

/**
 * The two parts of `namespace/model` as the shared parser splits them, unchecked; undefined unless
 * the text is exactly those two parts (no host, scheme or tag, and a model after the '/').
 */
export function splitRepoPath(path: string): { namespace: string; model: string } | undefined {
  const raw = ModelName.parseRaw(path);
  return raw.repository() === path ? { namespace: raw.namespace, model: raw.model } : undefined;
}

export function parseRepoName(namespace: string, model: string): RepoName {
  const problem = repoNameProblem(namespace, model);
  if (problem) throw new RegistryError("NAME_INVALID", `invalid repository name "${namespace}/${model}": ${problem}`);
  const ns = namespace.toLowerCase();
  const m = model.toLowerCase();
  return { namespace: ns, model: m, path: `${ns}/${m}` };
}

/** `ns/model` as written in a scope or a mount's `from`. */
export function parseRepoPath(path: string): RepoName {
  const parts = splitRepoPath(path);
  if (!parts) throw new RegistryError("NAME_INVALID", `invalid repository name "${path.slice(0, 200)}": expected namespace/model`);
  return parseRepoName(parts.namespace, parts.model);
}

export function parseTag(tag: string): string {
  const problem = tagProblem(tag);
  if (problem) throw new RegistryError("TAG_INVALID", `invalid tag "${tag.slice(0, 200)}": ${problem}`);
  return tag;
}

/** A digest from a URL: canonical lower-case sha256 or DIGEST_INVALID. */
export function parseDigestParam(value: string): string {
  if (!isDigest(value)) {
    throw new RegistryError("DIGEST_INVALID", `invalid digest ${JSON.stringify(value.slice(0, 100))}: expected sha256:<64 lower-case hex digits>`);
  }
  return value;
}

export type Reference = { kind: "tag"; tag: string } | { kind: "digest"; digest: string };

/** A manifest reference: a digest when it contains ':', else a tag. */
export function parseReference(ref: string): Reference {
  if (ref.includes(":")) return { kind: "digest", digest: parseDigestParam(ref) };
  return { kind: "tag", tag: parseTag(ref) };
}
