// The publisher signature payload (docs/protocol.md, "Model signatures"): its exact bytes, what it
// binds, and that it is kept apart from the token-request and login-link formats signed with the
// same key.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EMPTY_BODY_HASH,
  KeyFormatError,
  MODEL_SIGNATURE_PREFIX,
  generateKeyPair,
  modelSignaturePayload,
  sign,
  signModel,
  tokenRequestChallenge,
  verifyModelSignature,
} from "../src/signing.ts";

const digest = `sha256:${"ab".repeat(32)}`;
const model = { host: "registry.example:5005", repository: "alice/story", digest };
const key = generateKeyPair();

test("the payload is the prefix line and three fields, names in lower case", () => {
  assert.equal(modelSignaturePayload(model), `corral-model-signature-v1\nhost=registry.example:5005\nrepository=alice/story\ndigest=${digest}\n`);
  assert.equal(modelSignaturePayload({ host: "Registry.Example:5005", repository: "Alice/Story", digest }), modelSignaturePayload(model));
  assert.ok(modelSignaturePayload(model).startsWith(`${MODEL_SIGNATURE_PREFIX}\n`));
});

test("fields that could carry a newline or pose as another field are refused", () => {
  for (const bad of [
    { ...model, host: "evil\nrepository=alice/story" },
    { ...model, host: "" },
    { ...model, repository: "alice/story\ndigest=x" },
    { ...model, repository: "alice" },
    { ...model, repository: "a/b/c" },
    { ...model, digest: "sha256:AB" },
    { ...model, digest: `sha256:${"ab".repeat(32)}\n` },
  ]) {
    assert.throws(() => modelSignaturePayload(bad), KeyFormatError, JSON.stringify(bad));
  }
});

test("a signature verifies for its host, repository and digest and for nothing else", () => {
  const signature = signModel(key, model);
  assert.equal(verifyModelSignature(key.publicKey, model, signature), true);
  assert.equal(verifyModelSignature(key.publicKey, { ...model, host: "REGISTRY.example:5005" }, signature), true);
  for (const other of [{ host: "registry.example" }, { host: "other.example:5005" }, { repository: "bob/story" }, { repository: "alice/story2" }, { digest: `sha256:${"cd".repeat(32)}` }]) {
    assert.equal(verifyModelSignature(key.publicKey, { ...model, ...other }, signature), false, JSON.stringify(other));
  }
  assert.equal(verifyModelSignature(generateKeyPair().publicKey, model, signature), false);
  assert.equal(verifyModelSignature(key.publicKey, model, "not base64!"), false);
  assert.equal(verifyModelSignature(key.publicKey, model, Buffer.alloc(63).toString("base64")), false);
});

test("signatures of token requests and login links are never model signatures, nor the reverse", () => {
  const url = `http://registry.example:5005/v2/token?nonce=x&scope=repository%3Aalice%2Fstory%3Apull&service=registry.example%3A5005&ts=1`;
  for (const message of [tokenRequestChallenge(url), `POST,http://registry.example:5005/-/login/links?nonce=x&ts=1,${EMPTY_BODY_HASH}`]) {
    const other = Buffer.from(sign(key, message)).toString("base64");
    assert.equal(verifyModelSignature(key.publicKey, model, other), false);
    assert.ok(!message.startsWith(MODEL_SIGNATURE_PREFIX));
  }
  // A model payload can never be read as either of the other two: they begin with a method and a comma.
  assert.doesNotMatch(modelSignaturePayload(model), /^(GET|POST),/);
});
