// The WWW-Authenticate challenge of a 401 (docs/protocol.md, "Challenge"): its scheme and its
// parameters, quoted or bare. The daemon reads Corral's and Distribution's Bearer challenges with
// it, the registry those of the upstreams it mirrors.

/** Far longer than a real challenge (a realm, a service and a few scopes). */
export const MAX_CHALLENGE_LENGTH = 8192;

export interface AuthChallenge {
  /** Lower case: `bearer`, `basic`, or whatever the server sent. */
  scheme: string;
  /** Parameter names in lower case. */
  params: Record<string, string>;
}

/** Reads the scheme and `key=value` / `key="value"` parameters; callers bound the length first. */
export function parseAuthChallenge(header: string): AuthChallenge {
  const m = /^\s*([A-Za-z][\w.-]*)(?:\s+|$)/.exec(header);
  const scheme = m ? m[1]!.toLowerCase() : "";
  const rest = m ? header.slice(m[0].length) : header;
  const params: Record<string, string> = {};
  const re = /(?:^|[\s,])([A-Za-z][\w.-]*)=(?:"([^"]*)"|([^,\s]*))/g;
  for (let p = re.exec(rest); p; p = re.exec(rest)) {
    const key = p[1]!.toLowerCase();
    if (!(key in params)) params[key] = p[2] ?? p[3] ?? "";
  }
  return { scheme, params };
}
