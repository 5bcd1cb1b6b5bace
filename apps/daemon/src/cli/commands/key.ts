// `corral key`: the public key line a registry admin registers for this machine.
import { formatPublicKeyLine } from "@corral/shared/signing";
import { loadConfig } from "../../config.ts";
import { loadOrCreateIdentity } from "../../identity.ts";

export async function keyCommand(): Promise<void> {
  const key = await loadOrCreateIdentity(loadConfig().homeDir);
  process.stdout.write(formatPublicKeyLine(key.publicKey) + "\n");
}
