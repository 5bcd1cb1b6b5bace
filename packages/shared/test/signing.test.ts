import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  EMPTY_BODY_HASH,
  KeyFormatError,
  fingerprint,
  formatPrivateKey,
  formatPublicKeyLine,
  generateKeyPair,
  parsePrivateKey,
  parsePublicKeyLine,
  parseSignedAuthorization,
  sign,
  signedAuthorization,
  tokenRequestChallenge,
  tokenRequestURL,
  verify,
  verifyTokenRequest,
} from "../src/signing.ts";
import nacl from "tweetnacl";

function hasSshKeygen(): boolean {
  try {
    execFileSync("ssh-keygen", ["-?"], { stdio: "ignore" });
    return true;
  } catch (e) {
    return (e as { status?: number }).status !== undefined && (e as { code?: string }).code !== "ENOENT";
  }
}
const sshKeygen = hasSshKeygen();

test("the empty-body constant is the one Ollama's client signs", () => {
  assert.equal(EMPTY_BODY_HASH, "ZTNiMGM0NDI5OGZjMWMxNDlhZmJmNGM4OTk2ZmI5MjQyN2FlNDFlNDY0OWI5MzRjYTQ5NTk5MWI3ODUyYjg1NQ==");
});

test("token URL and signed string match the worked example byte for byte", () => {
  const url = tokenRequestURL({
    realm: "https://reg.example:8443/v2/token",
    service: "reg.example:8443",
    scope: "repository:alice/mario:pull",
    ts: 1755820000,
    nonce: "q0V7c0x1oQp3YbRk9v2xgA",
  });
  assert.equal(url, "https://reg.example:8443/v2/token?nonce=q0V7c0x1oQp3YbRk9v2xgA&scope=repository%3Aalice%2Fmario%3Apull&service=reg.example%3A8443&ts=1755820000");
  assert.equal(tokenRequestChallenge(url), `GET,${url},ZTNiMGM0NDI5OGZjMWMxNDlhZmJmNGM4OTk2ZmI5MjQyN2FlNDFlNDY0OWI5MzRjYTQ5NTk5MWI3ODUyYjg1NQ==`);
});

test("realm query is kept and several scopes each get a parameter", () => {
  const url = tokenRequestURL({ realm: "http://h:1/token?a=b c", service: "h:1", scope: "repository:x/y:pull repository:x/z:pull,push", ts: 5, nonce: "n" });
  assert.equal(url, "http://h:1/token?a=b+c&nonce=n&scope=repository%3Ax%2Fy%3Apull&scope=repository%3Ax%2Fz%3Apull%2Cpush&service=h%3A1&ts=5");
});

test("a generated key round-trips through the OpenSSH formats and signs verifiably", () => {
  const key = generateKeyPair("me@host");
  const pem = formatPrivateKey(key);
  assert.match(pem, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  const back = parsePrivateKey(pem);
  assert.deepEqual(back.publicKey, key.publicKey);
  assert.deepEqual(back.secretKey, key.secretKey);
  assert.equal(back.comment, "me@host");
  const line = formatPublicKeyLine(key.publicKey);
  assert.match(line, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}$/);
  assert.equal(line.split(" ")[1]!.length, 68);
  const url = "http://127.0.0.1:5005/v2/token?nonce=x&scope=repository%3Aa%2Fb%3Apull&service=127.0.0.1%3A5005&ts=1";
  const header = signedAuthorization(key, tokenRequestChallenge(url));
  const [pub, sig] = header.split(":");
  assert.equal(pub!.length, 68);
  assert.equal(sig!.length, 88);
  const parsed = parseSignedAuthorization(header);
  assert.ok(verifyTokenRequest(url, parsed));
  assert.ok(!verifyTokenRequest(url.replace("ts=1", "ts=2"), parsed));
  const other = parseSignedAuthorization(signedAuthorization(generateKeyPair(), tokenRequestChallenge(url)));
  assert.ok(!verifyTokenRequest(url, { publicKey: key.publicKey, signature: other.signature }));
});

test("bad key material is refused with a reason", () => {
  assert.throws(() => parsePublicKeyLine("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"), /expected key type ssh-ed25519/);
  assert.throws(() => parsePublicKeyLine("ssh-ed25519 not*base64"), /not valid base64/);
  assert.throws(() => parsePublicKeyLine("ssh-ed25519"), KeyFormatError);
  // A valid wire header whose key is 31 bytes long.
  const short = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 31]), Buffer.alloc(31)]);
  assert.throws(() => parsePublicKeyLine(`ssh-ed25519 ${short.toString("base64")}`), /32-byte/);
  assert.throws(() => parsePrivateKey("hello"), /OPENSSH PRIVATE KEY/);
  assert.throws(() => parseSignedAuthorization("nocolon"), /<public key>:<signature>/);
  const pub = formatPublicKeyLine(generateKeyPair().publicKey).split(" ")[1]!;
  assert.throws(() => parseSignedAuthorization(`${pub}:${Buffer.alloc(10).toString("base64")}`), /64-byte signature/);
  // A truncated private key names the field it stopped at.
  const pem = formatPrivateKey(generateKeyPair());
  const lines = pem.trim().split("\n");
  const cut = [lines[0], lines[1], lines[2]!.slice(0, 20), lines[lines.length - 1]].join("\n");
  assert.throws(() => parsePrivateKey(cut), KeyFormatError);
});

test("interoperates with ssh-keygen both ways", { skip: sshKeygen ? false : "ssh-keygen is not installed" }, () => {
  const dir = mkdtempSync(join(tmpdir(), "corral-signing-"));
  try {
    // ssh-keygen's key → our parser.
    const theirs = join(dir, "theirs");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "their comment", "-f", theirs]);
    const key = parsePrivateKey(readFileSync(theirs, "utf8"));
    const pubLine = readFileSync(`${theirs}.pub`, "utf8").trim();
    assert.equal(formatPublicKeyLine(key.publicKey, key.comment), pubLine);
    assert.equal(key.comment, "their comment");
    const fp = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${theirs}.pub`], { encoding: "utf8" }).split(" ")[1];
    assert.equal(fingerprint(key.publicKey), fp);
    // Our key → ssh-keygen derives the same public line from the private file.
    const ours = generateKeyPair();
    const mine = join(dir, "mine");
    writeFileSync(mine, formatPrivateKey(ours));
    chmodSync(mine, 0o600);
    const derived = execFileSync("ssh-keygen", ["-y", "-f", mine], { encoding: "utf8" }).trim();
    assert.equal(derived, formatPublicKeyLine(ours.publicKey));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("signatures are ed25519's deterministic bytes, and a second encoding of one is refused", () => {
  const kp = nacl.sign.keyPair();
  const key = { publicKey: kp.publicKey, secretKey: kp.secretKey, comment: "" };
  const message = "GET,http://registry.test/v2/token?nonce=1,x";
  const sig = sign(key, message);
  // The same bytes as an independent implementation's.
  assert.ok(Buffer.from(sig).equals(Buffer.from(nacl.sign.detached(Buffer.from(message), kp.secretKey))));
  assert.equal(verify(kp.publicKey, message, sig), true);
  assert.equal(verify(kp.publicKey, `${message}!`, sig), false);
  // The same signature with L added to its scalar S (both still fit 32 bytes): it satisfies the
  // curve equation too, and an implementation that does not insist on S < L accepts it.
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
  let twin = s + L;
  assert.ok(twin < 1n << 256n);
  const other = new Uint8Array(sig);
  for (let i = 0; i < 32; i++) {
    other[32 + i] = Number(twin & 0xffn);
    twin >>= 8n;
  }
  assert.equal(nacl.sign.detached.verify(Buffer.from(message), other, kp.publicKey), true, "tweetnacl takes it");
  assert.equal(verify(kp.publicKey, message, other), false);
  assert.equal(verify(new Uint8Array(32).fill(0xff), message, sig), false, "a public key that is no point");
});
