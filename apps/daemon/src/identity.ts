// The daemon's ed25519 identity for registries (docs/protocol.md, "Keys"): ~/.corral/id_ed25519 in OpenSSH format
// (mode 0600) and id_ed25519.pub. An existing ~/.ollama/id_ed25519 is NOT reused: a Corral key is
// registered on the team's registry on purpose, and sharing Ollama's would tie the two accounts.

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatPrivateKey, formatPublicKeyLine, generateKeyPair, parsePrivateKey, signModel, signedAuthorization, type KeyPair } from "@corral/shared/signing";
import type { Signer } from "./registry-client/session.ts";

export function keyPaths(homeDir: string): { privateKey: string; publicKey: string } {
  return { privateKey: join(homeDir, "id_ed25519"), publicKey: join(homeDir, "id_ed25519.pub") };
}

/** Loads the key pair, creating it (and saying so on stderr) when there is none. */
export async function loadOrCreateIdentity(homeDir: string, log: (line: string) => void = (l) => process.stderr.write(l + "\n")): Promise<KeyPair> {
  const paths = keyPaths(homeDir);
  try {
    return parsePrivateKey(await readFile(paths.privateKey, "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`reading ${paths.privateKey}: ${(e as Error).message}`);
  }
  log(`Couldn't find '${paths.privateKey}'. Generating new private key.`);
  const key = generateKeyPair();
  await mkdir(homeDir, { recursive: true, mode: 0o755 });
  await writeFile(paths.privateKey, formatPrivateKey(key), { mode: 0o600, flag: "wx" }).catch(async (e: NodeJS.ErrnoException) => {
    // Another process created it first: use theirs.
    if (e.code !== "EEXIST") throw e;
  });
  const stored = parsePrivateKey(await readFile(paths.privateKey, "utf8"));
  const line = formatPublicKeyLine(stored.publicKey);
  await writeFile(paths.publicKey, line + "\n", { mode: 0o644 });
  log(`Your new public key is: \n\n${line}\n`);
  return stored;
}

export function signerFor(key: KeyPair): Signer {
  return {
    authorization: (message) => signedAuthorization(key, message),
    publicKeyLine: () => formatPublicKeyLine(key.publicKey),
    signModel: (model) => signModel(key, model),
  };
}
