// The Bearer challenge of a 401 (docs/protocol.md, "Challenge"). The token request that answers it is built and signed
// by @corral/shared/signing, which the registry verifies with the same code.

import { MAX_CHALLENGE_LENGTH, parseAuthChallenge } from "@corral/shared/challenge";
import { RegistryError } from "./registry-errors.ts";

export { MAX_CHALLENGE_LENGTH };

export interface Challenge {
  realm: string;
  service: string;
  scope: string;
}

/** Reads `realm`, `service` and `scope` from a WWW-Authenticate value; quoted or bare values. */
export function parseChallenge(header: string): Challenge {
  if (header.length > MAX_CHALLENGE_LENGTH) {
    throw new RegistryError(502, `the registry sent a WWW-Authenticate header of ${header.length} characters, more than the ${MAX_CHALLENGE_LENGTH} allowed`);
  }
  const { params } = parseAuthChallenge(header);
  return { realm: params["realm"] ?? "", service: params["service"] ?? "", scope: params["scope"] ?? "" };
}
