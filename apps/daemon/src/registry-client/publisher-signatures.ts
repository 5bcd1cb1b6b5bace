// Publisher signatures on push and pull (docs/protocol.md, "Model signatures"). A push signs the
// host, the repository and the manifest digest with the daemon's key and uploads the signature
// beside the manifest; a registry that has no such route leaves the model unsigned, and the push
// still succeeds. A pull asks for the signatures of the manifest it received, verifies each over
// the digest of the bytes it actually got, and applies CORRAL_VERIFY: a signature that does not
// verify always fails the pull (the registry's copy was altered); an unsigned model is a warning
// under `warn` and a refusal under `require`, before any blob is downloaded.

import { parsePublicKeyLine, fingerprint, verifyModelSignature, MAX_SIGNATURE_LIST_BYTES, type SignatureRecord, type SignedModel } from "@corral/shared/signing";
import type { ModelName } from "@corral/shared/name";
import { StatusError, type Progress } from "../errors.ts";
import type { VerifyPolicy } from "../config.ts";
import type { StoredSignature } from "../store/signatures.ts";
import { NotFoundError, RegistryError, type RegistrySession, type Signer } from "./session.ts";
import { readAtMost } from "./bounded-read.ts";

/** Statuses that mean "this registry keeps no signatures here" rather than a failure. */
const NO_SIGNATURES = [400, 403, 405, 406, 415, 501];

/** Signs the pushed manifest and uploads the signature; says once, as a status line, when the registry does not take it. */
export async function uploadSignature(session: RegistrySession, o: { signer: Signer | undefined; digest: string; signal?: AbortSignal | undefined }, progress: (p: Progress) => void): Promise<void> {
  const { signer, digest, signal } = o;
  if (!signer) return;
  const name = session.name;
  const model: SignedModel = { host: name.host, repository: session.repository, digest };
  const body = Buffer.from(JSON.stringify({ host: name.host, key: signer.publicKeyLine(), signature: signer.signModel(model) }));
  progress({ status: "signing manifest" });
  try {
    const res = await session.request("PUT", session.url(`/signatures/${digest}`), {
      headers: { "Content-Type": "application/json" },
      body: () => body,
      accept: NO_SIGNATURES,
      ...(signal ? { signal } : {}),
    });
    const refused = res.status >= 400 ? (await readAtMost(res.body, 64 << 10, "an error").catch(() => Buffer.alloc(0))).toString("utf8") : "";
    if (res.status < 400) {
      res.discard();
      return;
    }
    progress({ status: `pushed unsigned: ${name.host} did not accept the signature (${res.status}${refused ? `: ${errorText(refused)}` : ""})` });
  } catch (e) {
    if (e instanceof NotFoundError) {
      progress({ status: `pushed unsigned: ${name.host} does not keep model signatures` });
      return;
    }
    if ((e as Error).name === "AbortError") throw e;
    progress({ status: `pushed unsigned: uploading the signature failed: ${(e as Error).message}` });
  }
}

/** The message of a registry error body, or the body's first line. */
function errorText(body: string): string {
  try {
    const m = (JSON.parse(body) as { errors?: Array<{ message?: unknown }> }).errors?.[0]?.message;
    if (typeof m === "string") return m.slice(0, 300);
  } catch {
    // not the registry's JSON: the text itself
  }
  return body.trim().split("\n")[0]!.slice(0, 300);
}

/** The signature records the registry lists for `digest`, or why there are none. */
async function fetchSignatures(session: RegistrySession, digest: string, signal?: AbortSignal): Promise<SignatureRecord[] | { none: string }> {
  let text: string;
  try {
    const res = await session.request("GET", session.url(`/signatures/${digest}`), { headers: { Accept: "application/json" }, accept: NO_SIGNATURES, ...(signal ? { signal } : {}) });
    if (res.status >= 400) {
      res.discard();
      return { none: `${session.name.host} keeps no model signatures` };
    }
    text = (await readAtMost(res.body, MAX_SIGNATURE_LIST_BYTES, "a signature list")).toString("utf8");
  } catch (e) {
    if (e instanceof NotFoundError) return { none: `${session.name.host} keeps no model signatures` };
    if ((e as Error).name === "AbortError") throw e;
    if (e instanceof RegistryError && e.status === 401) return { none: `${session.name.host} refused to list its signatures` };
    return { none: `fetching its signatures failed: ${(e as Error).message}` };
  }
  try {
    const list = (JSON.parse(text) as { signatures?: unknown }).signatures;
    if (!Array.isArray(list)) return { none: `${session.name.host} answered the signature request without a list` };
    return list.filter((r): r is SignatureRecord => typeof r === "object" && r !== null);
  } catch {
    return { none: `${session.name.host} answered the signature request with something other than JSON` };
  }
}

export type Verdict =
  | { kind: "signed"; records: SignatureRecord[] }
  | { kind: "unsigned"; why: string }
  | { kind: "bad"; why: string };

/**
 * Judges the records a registry listed for the manifest the daemon received. Only records for this
 * host and repository count (one made for another name or registry proves nothing here); each of
 * those must verify over `expected`, whose digest is that of the bytes received, and its key's
 * fingerprint must be the one stated. `claimed` is the digest the registry said it served.
 */
export function judgeSignatures(records: SignatureRecord[], expected: SignedModel, claimed?: string): Verdict {
  const host = expected.host.toLowerCase();
  const repository = expected.repository.toLowerCase();
  const mine = records.filter((r) => typeof r.host === "string" && typeof r.repository === "string" && r.host.toLowerCase() === host && r.repository.toLowerCase() === repository);
  const good: SignatureRecord[] = [];
  for (const r of mine) {
    const who = `${typeof r.account === "string" ? r.account.slice(0, 80) : "?"} (key ${typeof r.fingerprint === "string" ? r.fingerprint.slice(0, 60) : "?"})`;
    let key: Uint8Array;
    try {
      key = parsePublicKeyLine(String(r.key)).publicKey;
    } catch {
      return { kind: "bad", why: `the signature by ${who} carries no valid public key` };
    }
    if (fingerprint(key) !== r.fingerprint || typeof r.account !== "string" || !r.account) return { kind: "bad", why: `the signature by ${who} does not match the key the registry names` };
    if (typeof r.signature !== "string" || !verifyModelSignature(key, expected, r.signature)) {
      return { kind: "bad", why: `the publisher signature by ${who} does not match the manifest received (${expected.digest}); the registry's copy may have been altered` };
    }
    good.push(r);
  }
  if (claimed && claimed !== expected.digest) {
    return { kind: "bad", why: `the registry says the manifest is ${claimed} but its bytes hash to ${expected.digest}; the registry's copy may have been altered` };
  }
  if (good.length === 0) return { kind: "unsigned", why: mine.length < records.length ? "its signatures were made for another name or registry" : "it has no publisher signature" };
  return { kind: "signed", records: good };
}

/**
 * Applies CORRAL_VERIFY to a pulled manifest before its blobs are fetched: returns the verified
 * records to keep, or throws the one line that ends the pull. `claimed` is the registry's
 * Docker-Content-Digest, when it sent one.
 */
export async function verifyPublisher(
  session: RegistrySession,
  o: { digest: string; claimed: string | undefined; policy: VerifyPolicy; signal?: AbortSignal | undefined },
  progress: (p: Progress) => void,
): Promise<StoredSignature[]> {
  const { digest, claimed, policy, signal } = o;
  const name: ModelName = session.name;
  const expected: SignedModel = { host: name.host, repository: session.repository, digest };
  // Asked by the digest the registry says it served: if its copy was swapped behind its back, the
  // signatures of the original come back and fail against the bytes that arrived.
  const listed = await fetchSignatures(session, claimed && /^sha256:[0-9a-f]{64}$/.test(claimed) ? claimed : digest, signal);
  const verdict: Verdict = "none" in listed ? (claimed && claimed !== digest ? judgeSignatures([], expected, claimed) : { kind: "unsigned", why: listed.none }) : judgeSignatures(listed, expected, claimed);
  const shown = name.toString();
  if (verdict.kind === "bad") throw new StatusError(500, `pull model manifest: ${shown}: ${verdict.why}`);
  if (verdict.kind === "unsigned") {
    if (policy === "require") throw new StatusError(403, `pull model manifest: ${shown} is not signed by its publisher (${verdict.why}), and CORRAL_VERIFY=require refuses unsigned models`);
    const line = `warning: ${shown} is not signed by its publisher (${verdict.why}); pulled anyway because CORRAL_VERIFY=warn`;
    console.error(line);
    progress({ status: line });
    return [];
  }
  const at = new Date().toISOString();
  for (const r of verdict.records) progress({ status: `verified publisher signature: ${r.account} (key ${r.fingerprint})` });
  return verdict.records.map((r) => ({
    host: r.host,
    repository: r.repository,
    digest: expected.digest,
    account: r.account,
    key: r.key,
    fingerprint: r.fingerprint,
    signature: r.signature,
    signed_at: typeof r.signed_at === "string" ? r.signed_at : "",
    verified_at: at,
  }));
}
