// The types Hono hands every handler: what the app injects and what middleware resolves per request.

import type { HttpBindings } from "@hono/node-server";
import type { Registry } from "../registry.ts";
import type { RepoName } from "../services/names.ts";
import type { Access } from "../services/repositories.ts";

/** Hono's typed context: the registry is injected, the repository and the caller are resolved by middleware. */
export type AppEnv = {
  Bindings: Partial<HttpBindings>;
  Variables: {
    registry: Registry;
    repo: RepoName;
    access: Access;
    /** The account name the bearer token was issued to, if any. */
    subject: string | undefined;
    /** A blob of this repository, resolved by the blob routes. */
    blob: { digest: string; size: number };
    /** The URL a blob GET hands out in `Location` alongside the bytes. */
    blobLocation: string | undefined;
  };
};
