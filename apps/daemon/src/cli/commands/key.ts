// `corral key`: the public key line a registry admin registers for this machine.
import { formatPublicKeyLine } from "@corral/shared/signing";
import { daemonConfig } from "../../config.ts";
import { loadOrCreateIdentity } from "../../identity.ts";

export async function keyCommand(): Promise<void> {
  const key = await loadOrCreateIdentity(daemonConfig().homeDir);
  process.stdout.write(formatPublicKeyLine(key.publicKey) + "\n");
}
