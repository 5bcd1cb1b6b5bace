// The Bearer challenge of a 401 (docs/protocol.md, "Challenge"). The token request that answers it is built and signed
// by @corral/shared/signing, which the registry verifies with the same code.

import { RegistryError } from "./registry-errors.ts";

export interface Challenge {
  realm: string;
  service: string;
  scope: string;
}

/** Far longer than a real challenge (a realm, a service and a few scopes). */
export const MAX_CHALLENGE_LENGTH = 8192;

/** Reads `realm`, `service` and `scope` from a WWW-Authenticate value; quoted or bare values. */
export function parseChallenge(header: string): Challenge {
  if (header.length > MAX_CHALLENGE_LENGTH) {
    throw new RegistryError(502, `the registry sent a WWW-Authenticate header of ${header.length} characters, more than the ${MAX_CHALLENGE_LENGTH} allowed`);
  }
  const value = header.replace(/^\s*Bearer\s+/i, "");
  const get = (key: string): string => {
    const re = new RegExp(`(?:^|[\\s,])${key}=(?:"([^"]*)"|([^,\\s]*))`, "i");
    const m = re.exec(value);
    return m ? (m[1] ?? m[2] ?? "") : "";
  };
  return { realm: get("realm"), service: get("service"), scope: get("scope") };
}
