// Model names: `[scheme://][host/][namespace/]model[:tag]`, parsed exactly as Ollama parses them
// (docs/protocol.md, "Names and hosts") so that a name typed for Ollama means the same model here.
// This is the only place that splits a name on '/' or ':'.

/** Marks a part that was present but empty ("ns/:tag"); it never satisfies the grammar. */
const MISSING = "!MISSING!";

export const DEFAULT_NAMESPACE = "library";
export const DEFAULT_TAG = "latest";
export const DEFAULT_SCHEME = "https";
/** Ollama's public registry; names without a host resolve here unless CORRAL_REGISTRY says otherwise. */
export const OLLAMA_REGISTRY_HOST = "registry.ollama.ai";

/** A CORRAL_REGISTRY value as a host: without scheme or trailing slashes; undefined when empty. */
export function registryHost(value: string | undefined): string | undefined {
  const host = value?.trim().replace(/^https?:\/\//, "").replace(/\/+$/, "");
  return host ? host : undefined;
}

/** The registry host that short names resolve to; configuration, never hard-coded elsewhere. */
export function defaultHost(env: NodeJS.ProcessEnv = process.env): string {
  return registryHost(env["CORRAL_REGISTRY"]) ?? OLLAMA_REGISTRY_HOST;
}

type Part = "host" | "namespace" | "model" | "tag";

const PART_RULES: Record<Part, { re: RegExp; max: number }> = {
  host: { re: /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/, max: 350 },
  namespace: { re: /^[A-Za-z0-9_][A-Za-z0-9_-]*$/, max: 80 },
  model: { re: /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, max: 80 },
  tag: { re: /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, max: 80 },
};

function partValid(kind: Part, value: string): boolean {
  const rule = PART_RULES[kind];
  return value.length >= 1 && value.length <= rule.max && rule.re.test(value);
}

/** The parts of a name as given: nothing is checked or defaulted but the scheme. */
export interface ModelNameParts {
  host: string;
  namespace: string;
  model: string;
  tag: string;
  /** Default: https. */
  scheme?: string;
}

export class ModelName {
  readonly host: string;
  readonly namespace: string;
  readonly model: string;
  readonly tag: string;
  readonly scheme: string;

  constructor(parts: ModelNameParts) {
    this.host = parts.host;
    this.namespace = parts.namespace;
    this.model = parts.model;
    this.tag = parts.tag;
    this.scheme = parts.scheme ?? DEFAULT_SCHEME;
  }

  /**
   * Parses without applying defaults: absent parts are "". Follows Ollama's order of splits,
   * so `host:port/ns/model` keeps the port in the host.
   */
  static parseRaw(input: string): ModelName {
    let rest = input;
    let host = "";
    let namespace = "";
    let model = "";
    let tag = "";
    let scheme = "";

    const lastColon = rest.lastIndexOf(":");
    const lastSlash = rest.lastIndexOf("/");
    if (lastColon > lastSlash) {
      tag = rest.slice(lastColon + 1) || MISSING;
      rest = rest.slice(0, lastColon);
      if (rest === "") rest = MISSING;
    }
    let i = rest.lastIndexOf("/");
    if (i < 0) {
      model = rest;
    } else {
      // A separator that is there promises a part on each side: an empty one is marked missing
      // (never valid) rather than filled from the defaults, so "/ns/m" and "host//m" are invalid.
      model = rest.slice(i + 1) || MISSING;
      rest = rest.slice(0, i) || MISSING;
      i = rest.lastIndexOf("/");
      if (i < 0) {
        namespace = rest;
      } else {
        namespace = rest.slice(i + 1) || MISSING;
        host = rest.slice(0, i) || MISSING;
        const s = host.indexOf("://");
        if (s >= 0) {
          scheme = host.slice(0, s);
          host = host.slice(s + 3);
        }
      }
    }
    return new ModelName({ host, namespace, model, tag, scheme });
  }

  /** Parses and fills every absent part from the defaults (host from CORRAL_REGISTRY). */
  static parse(input: string, host: string = defaultHost()): ModelName {
    const raw = ModelName.parseRaw(input.trim());
    return new ModelName({
      host: raw.host || host,
      namespace: raw.namespace || DEFAULT_NAMESPACE,
      model: raw.model,
      tag: raw.tag || DEFAULT_TAG,
      scheme: raw.scheme || DEFAULT_SCHEME,
    });
  }

  /** Builds a name from the four parts of a manifest path. */
  static fromParts(host: string, namespace: string, model: string, tag: string): ModelName {
    return new ModelName({ host, namespace, model, tag });
  }

  isValid(): boolean {
    return (
      partValid("host", this.host) &&
      partValid("namespace", this.namespace) &&
      partValid("model", this.model) &&
      partValid("tag", this.tag)
    );
  }

  /** Why the name is invalid, naming the part and the rule, or undefined when it is valid. */
  problem(): string | undefined {
    const parts: Array<[Part, string]> = [
      ["host", this.host],
      ["namespace", this.namespace],
      ["model", this.model],
      ["tag", this.tag],
    ];
    for (const [kind, value] of parts) {
      if (partValid(kind, value)) continue;
      const rule = PART_RULES[kind];
      if (value === "" || value === MISSING) return `the ${kind} is empty`;
      if (value.length > rule.max) return `the ${kind} is longer than ${rule.max} characters`;
      const allowed =
        kind === "host" ? "letters, digits, '_', '.', ':' and '-'" :
        kind === "namespace" ? "letters, digits, '_' and '-'" :
        "letters, digits, '_', '.' and '-'";
      return `the ${kind} "${value}" must start with a letter, digit or '_' and contain only ${allowed}`;
    }
    return undefined;
  }

  /** `host/namespace/model:tag`, what /api/show and the runner call the model's name. */
  toString(): string {
    return `${this.host}/${this.namespace}/${this.model}:${this.tag}`;
  }

  /** The shortest unambiguous form, used by /api/tags, /api/ps and the CLI. */
  shortest(): string {
    if (this.host.toLowerCase() !== OLLAMA_REGISTRY_HOST) return this.toString();
    if (this.namespace.toLowerCase() !== DEFAULT_NAMESPACE) return `${this.namespace}/${this.model}:${this.tag}`;
    return `${this.model}:${this.tag}`;
  }

  /** The registry repository path, `namespace/model`. */
  repository(): string {
    return `${this.namespace}/${this.model}`;
  }

  /** Relative path segments of the manifest file; only call on a valid name. */
  manifestSegments(): [string, string, string, string] {
    if (!this.isValid()) throw new Error(`invalid model name: ${this.toString()}`);
    return [this.host, this.namespace, this.model, this.tag];
  }

  equals(other: ModelName): boolean {
    return this.toString() === other.toString();
  }

  /** Case-insensitive equality, how Ollama decides two spellings denote the same model. */
  equalFold(other: ModelName): boolean {
    return this.toString().toLowerCase() === other.toString().toLowerCase();
  }

  withParts(parts: Partial<Record<Part, string>>): ModelName {
    return new ModelName({
      host: parts.host ?? this.host,
      namespace: parts.namespace ?? this.namespace,
      model: parts.model ?? this.model,
      tag: parts.tag ?? this.tag,
      scheme: this.scheme,
    });
  }
}

/** Parses a user-supplied name and throws a clear error when it is not a valid model name. */
export function parseModelName(input: string, host?: string): ModelName {
  const name = ModelName.parse(input, host);
  const problem = name.problem();
  if (problem) throw new InvalidNameError(input, problem);
  return name;
}

export class InvalidNameError extends Error {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`invalid model name "${input}": ${reason}`);
    this.name = "InvalidNameError";
  }
}
