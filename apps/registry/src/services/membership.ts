// Roles on a namespace: the only code that writes the members table, for the admin CLI and API
// and for owners' web forms alike, so both keep the same invariant: an organisation always keeps
// at least one owner. Callers find and authorise the accounts; this decides whether the change
// is allowed.

import { and, eq } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { members } from "../db/schema.ts";
import type { Role } from "../auth/scope.ts";
import { AdminError } from "../errors.ts";
import type { Account } from "./accounts.ts";

/**
 * Gives `member` the role `role` on `namespace`, or removes it when `role` is undefined. Either
 * happens whole or not at all: a change that would leave an organisation without an owner is
 * refused and nothing is written.
 */
export async function writeMembership(db: Database, namespace: Account, member: Account, role: Role | undefined): Promise<void> {
  // A user's own namespace is theirs by being that account; a membership row cannot change it.
  if (namespace.id === member.id) throw new AdminError("INVALID_REQUEST", `"${member.name}" already owns the namespace "${namespace.name}"`);
  await db.transaction(async (tx) => {
    if (role) {
      await tx
        .insert(members)
        .values({ namespaceId: namespace.id, accountId: member.id, role })
        .onConflictDoUpdate({ target: [members.namespaceId, members.accountId], set: { role } });
    } else {
      const gone = await tx.delete(members).where(and(eq(members.namespaceId, namespace.id), eq(members.accountId, member.id))).returning({ id: members.accountId });
      if (gone.length === 0) throw new AdminError("NOT_FOUND", `${member.name} is not a member of ${namespace.name}`);
    }
    if (namespace.kind === "org") await keepAnOwner(tx, namespace);
  });
}

async function keepAnOwner(db: Database, org: Account): Promise<void> {
  const [owner] = await db
    .select({ id: members.accountId })
    .from(members)
    .where(and(eq(members.namespaceId, org.id), eq(members.role, "owner")))
    .limit(1);
  if (!owner) throw new AdminError("CONFLICT", `${org.name} must keep at least one owner: make another member an owner first`);
}
