// How a pull judges the signature records a registry lists (registry-client/publisher-signatures.ts):
// only records for the pulled host and repository count, each must verify over the digest of the
// bytes received with the key whose fingerprint it states, and a registry that serves other bytes
// than the digest it names has altered its copy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fingerprint, formatPublicKeyLine, generateKeyPair, signModel, type SignatureRecord } from "@corral/shared/signing";
import { judgeSignatures } from "../src/registry-client/publisher-signatures.ts";

const alice = generateKeyPair();
const digest = `sha256:${"12".repeat(32)}`;
const swapped = `sha256:${"34".repeat(32)}`;
const expected = { host: "127.0.0.1:5005", repository: "alice/story", digest };

function record(over: Partial<SignatureRecord> = {}, signed = expected): SignatureRecord {
  return {
    host: expected.host,
    repository: expected.repository,
    digest: signed.digest,
    account: "alice",
    key: formatPublicKeyLine(alice.publicKey),
    fingerprint: fingerprint(alice.publicKey),
    signature: signModel(alice, signed),
    signed_at: "2026-01-01T00:00:00.000Z",
    ...over,
  };
}

test("a record for this host, repository and digest is a verified publisher", () => {
  const v = judgeSignatures([record()], expected, digest);
  assert.equal(v.kind, "signed");
  assert.deepEqual(v.kind === "signed" && v.records.map((r) => r.account), ["alice"]);
});

test("no records, or records for another name or registry only, mean unsigned", () => {
  assert.deepEqual(judgeSignatures([], expected), { kind: "unsigned", why: "it has no publisher signature" });
  const elsewhere = { ...expected, host: "registry.example" };
  assert.equal(judgeSignatures([record({ host: "registry.example" }, elsewhere)], expected).kind, "unsigned");
  const renamed = { ...expected, repository: "alice/other" };
  assert.match(JSON.stringify(judgeSignatures([record({ repository: "alice/other" }, renamed)], expected)), /another name or registry/);
});

test("a record over other bytes, a foreign key or a false fingerprint fails the pull", () => {
  // The registry's copy was swapped: the original's signature does not cover the bytes received.
  const onSwapped = judgeSignatures([record()], { ...expected, digest: swapped }, digest);
  assert.equal(onSwapped.kind, "bad");
  assert.match(onSwapped.kind === "bad" ? onSwapped.why : "", /does not match the manifest received \(sha256:3434/);
  const mallory = generateKeyPair();
  assert.equal(judgeSignatures([record({ signature: signModel(mallory, expected) })], expected).kind, "bad");
  assert.equal(judgeSignatures([record({ key: formatPublicKeyLine(mallory.publicKey) })], expected).kind, "bad");
  assert.equal(judgeSignatures([record({ key: "ssh-ed25519 garbage" })], expected).kind, "bad");
  assert.equal(judgeSignatures([record({ account: "" })], expected).kind, "bad");
  // One good record does not excuse a bad one beside it.
  assert.equal(judgeSignatures([record(), record({ signature: signModel(mallory, expected) })], expected).kind, "bad");
});

test("bytes that do not hash to the digest the registry named fail even without signatures", () => {
  const v = judgeSignatures([], expected, swapped);
  assert.equal(v.kind, "bad");
  assert.match(v.kind === "bad" ? v.why : "", /says the manifest is sha256:3434.* but its bytes hash to sha256:1212/);
});
