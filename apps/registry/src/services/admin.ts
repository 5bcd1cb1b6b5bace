// The admin operations as one interface, with the implementation that works on the database
// directly. The CLI uses it, or its HTTP twin (cli/admin-client.ts) when a server owns the data.

import { AdminError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import * as accounts from "./accounts.ts";
import { collectGarbage, type GCReport } from "./gc.ts";
import { issueToken, type Grant } from "../auth/tokens.ts";
import { parseScope } from "../auth/scope.ts";
import { parseRepoPath, splitRepoPath } from "./names.ts";
import { accessTo } from "./repositories.ts";
import { serviceHost } from "../http/public-urls.ts";

export interface AdminOps {
  addUser(name: string, keys: string[]): Promise<accounts.UserInfo>;
  listUsers(): Promise<accounts.UserInfo[]>;
  addKey(user: string, key: string): Promise<accounts.UserInfo>;
  removeKey(user: string, key: string): Promise<accounts.UserInfo>;
  createOrg(name: string, owner: string): Promise<accounts.UserInfo>;
  addMember(org: string, user: string, role: string): Promise<accounts.UserInfo>;
  grant(namespace: string, user: string, role: string): Promise<accounts.UserInfo>;
  setVisibility(repository: string, visibility: string): Promise<{ repository: string; visibility: string }>;
  gc(dryRun: boolean): Promise<GCReport>;
  /**
   * A bearer token for a user, for clients that cannot sign (skopeo, CI): `--registry-token`. Its
   * audience is `service`, by default the registry's own (the host of its primary URL).
   */
  token(user: string, scopes: string[], service?: string): Promise<{ token: string; expires_in: number }>;
}

export function directAdmin(reg: Registry): AdminOps {
  const db = reg.db;
  return {
    addUser: (name, keys) => accounts.addUser(reg, name, keys),
    listUsers: () => accounts.listAccounts(db),
    addKey: (user, key) => accounts.addKey(db, user, key),
    removeKey: (user, key) => accounts.removeKey(db, user, key),
    createOrg: (name, owner) => accounts.createOrg(reg, name, owner),
    addMember: (org, user, role) => accounts.addMember(db, org, user, role),
    grant: (ns, user, role) => accounts.grant(db, ns, user, role),
    async setVisibility(repository, visibility) {
      const parts = splitRepoPath(repository);
      if (!parts) throw new AdminError("INVALID_REQUEST", `invalid repository "${repository}": expected namespace/model`);
      return accounts.setVisibility(reg, parts.namespace, parts.model, visibility);
    },
    gc: (dryRun) => collectGarbage(reg, { graceSeconds: reg.config.gcGraceSeconds, uploadTTLSeconds: reg.config.uploadTTLSeconds, dryRun }),
    async token(user, scopes, service) {
      const account = await accounts.findAccount(db, accounts.checkAccountName(user));
      if (!account || account.kind !== "user") throw new AdminError("NOT_FOUND", `user "${user}" does not exist`);
      const access: Grant[] = [];
      for (const item of scopes) {
        const scope = parseScope(item);
        if (!scope) throw new AdminError("INVALID_REQUEST", `invalid scope "${item}": expected repository:<ns>/<model>:<actions>`);
        let name;
        try {
          name = parseRepoPath(scope.name);
        } catch (e) {
          throw new AdminError("INVALID_REQUEST", (e as Error).message);
        }
        const allowed = (await accessTo(db, account, name)).actions;
        const actions = scope.actions.filter((a) => allowed.has(a));
        if (actions.length) access.push({ type: "repository", name: name.path, actions });
      }
      const t = await issueToken(reg.secrets.tokenKey, service ?? serviceHost(reg.urls), { sub: account.name, access }, reg.config.tokenTTLSeconds);
      return { token: t.token, expires_in: t.expiresIn };
    },
  };
}
