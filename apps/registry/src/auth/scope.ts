// Actions, roles and the `repository:<ns>/<model>:<actions>` scopes of challenges and tokens.

export const ACTIONS = ["pull", "push", "delete"] as const;
export type Action = (typeof ACTIONS)[number];
export const ROLES = ["reader", "writer", "owner"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

/** What a role on a namespace allows; public repositories add `pull` for everyone. */
export function actionsForRole(role: Role | undefined): Action[] {
  switch (role) {
    case "owner":
      return ["pull", "push", "delete"];
    case "writer":
      return ["pull", "push"];
    case "reader":
      return ["pull"];
    default:
      return [];
  }
}

export interface RepositoryScope {
  /** `ns/model` as requested (not yet validated). */
  name: string;
  actions: Action[];
}

/** Parses one scope item; anything that is not a repository scope with known actions yields undefined. */
export function parseScope(item: string): RepositoryScope | undefined {
  const m = /^repository:([^:]+):([a-z*,]+)$/.exec(item);
  if (!m) return undefined;
  const actions = new Set<Action>();
  for (const a of m[2]!.split(",")) {
    if (a === "*") ACTIONS.forEach((x) => actions.add(x));
    else if ((ACTIONS as readonly string[]).includes(a)) actions.add(a as Action);
  }
  return { name: m[1]!, actions: [...actions] };
}

/** The scope the challenge asks for; pushing also needs pull, as Ollama's client expects. */
export function challengeScope(repo: string, need: Action): string {
  return `repository:${repo}:${need === "push" ? "push,pull" : need}`;
}
