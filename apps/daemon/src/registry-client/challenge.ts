// The Bearer challenge of a 401 (§6.2). The token request that answers it is built and signed
// by @corral/shared/signing, which the registry verifies with the same code.

export interface Challenge {
  realm: string;
  service: string;
  scope: string;
}

/** Reads `realm`, `service` and `scope` from a WWW-Authenticate value; quoted or bare values. */
export function parseChallenge(header: string): Challenge {
  const value = header.replace(/^\s*Bearer\s+/i, "");
  const get = (key: string): string => {
    const re = new RegExp(`(?:^|[\\s,])${key}=(?:"([^"]*)"|([^,\\s]*))`, "i");
    const m = re.exec(value);
    return m ? (m[1] ?? m[2] ?? "") : "";
  };
  return { realm: get("realm"), service: get("service"), scope: get("scope") };
}
