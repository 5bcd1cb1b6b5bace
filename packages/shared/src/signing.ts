// The ed25519 signing scheme the daemon and the registry both speak (docs/protocol.md, "Authentication"):
// OpenSSH key files, the `ssh-ed25519 AAAA…` public key line, the token request URL and the exact
// string that is signed, and `<pubkey>:<signature>` Authorization values. Everything that turns a
// key into bytes or bytes into a key lives here.

import { createHash, createPrivateKey, createPublicKey, randomBytes, sign as signWithKey, verify as verifyWithKey, type KeyObject } from "node:crypto";
import nacl from "tweetnacl";

export const KEY_TYPE = "ssh-ed25519";
/** base64(hex(sha256(""))): the constant third field of the signed token request (docs/protocol.md, "Signed token request"). */
export const EMPTY_BODY_HASH = Buffer.from(createHash("sha256").update("").digest("hex")).toString("base64");

const PRIVATE_KEY_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const PRIVATE_KEY_END = "-----END OPENSSH PRIVATE KEY-----";
const AUTH_MAGIC = Buffer.from("openssh-key-v1\0", "latin1");

export class KeyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyFormatError";
  }
}

export interface KeyPair {
  /** 32 bytes. */
  publicKey: Uint8Array;
  /** 64 bytes: seed ‖ public key, the form tweetnacl and OpenSSH both use. */
  secretKey: Uint8Array;
  comment: string;
}

// --- SSH wire encoding -------------------------------------------------------------------------

function sshString(data: Uint8Array | string): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/** Reads length-prefixed fields; every read names what it was reading when the data runs out. */
class WireReader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  uint32(field: string): number {
    if (this.pos + 4 > this.buf.length) throw new KeyFormatError(`${this.what}: truncated before ${field}`);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(field: string): Buffer {
    const n = this.uint32(`the length of ${field}`);
    if (this.pos + n > this.buf.length) throw new KeyFormatError(`${this.what}: ${field} claims ${n} bytes but only ${this.buf.length - this.pos} remain`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(field: string): string {
    return this.bytes(field).toString("utf8");
  }

  rest(): Buffer {
    return this.buf.subarray(this.pos);
  }

  done(): boolean {
    return this.pos === this.buf.length;
  }
}

/** The 51-byte SSH wire form of an ed25519 public key: string "ssh-ed25519", string key. */
export function publicKeyWire(publicKey: Uint8Array): Buffer {
  if (publicKey.length !== 32) throw new KeyFormatError(`ed25519 public key: expected 32 bytes, got ${publicKey.length}`);
  return Buffer.concat([sshString(KEY_TYPE), sshString(publicKey)]);
}

/** Parses the SSH wire form back to the 32-byte key, rejecting other key types. */
export function parsePublicKeyWire(wire: Uint8Array): Uint8Array {
  const r = new WireReader(Buffer.from(wire), "public key");
  const type = r.string("the key type");
  if (type !== KEY_TYPE) throw new KeyFormatError(`public key: expected key type ${KEY_TYPE}, got ${JSON.stringify(type.slice(0, 40))}`);
  const key = r.bytes("the ed25519 key");
  if (key.length !== 32) throw new KeyFormatError(`public key: expected a 32-byte ed25519 key, got ${key.length} bytes`);
  if (!r.done()) throw new KeyFormatError("public key: unexpected bytes after the key");
  return new Uint8Array(key);
}

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeBase64(text: string, what: string): Buffer {
  if (!BASE64_RE.test(text) || text.length % 4 !== 0) throw new KeyFormatError(`${what}: not valid base64`);
  return Buffer.from(text, "base64");
}

// --- public key lines ---------------------------------------------------------------------------

export interface PublicKeyLine {
  publicKey: Uint8Array;
  /** The base64 wire blob, the second field of the line and the left half of an Authorization value. */
  base64: string;
  comment: string;
}

/** `ssh-ed25519 <base64 wire blob>[ comment]`, as in id_ed25519.pub and authorized_keys. */
export function formatPublicKeyLine(publicKey: Uint8Array, comment = ""): string {
  const line = `${KEY_TYPE} ${publicKeyWire(publicKey).toString("base64")}`;
  return comment ? `${line} ${comment}` : line;
}

/** Parses one `ssh-ed25519 AAAA… [comment]` line; names what is wrong when it cannot. */
export function parsePublicKeyLine(line: string): PublicKeyLine {
  const text = line.trim();
  if (text.length > 16_384) throw new KeyFormatError("public key line: longer than 16384 characters");
  const fields = text.split(/\s+/);
  const [type, blob] = fields;
  if (!type || !blob) throw new KeyFormatError(`public key line: expected "${KEY_TYPE} <base64>", got ${JSON.stringify(text.slice(0, 60))}`);
  if (type !== KEY_TYPE) throw new KeyFormatError(`public key line: expected key type ${KEY_TYPE}, got ${JSON.stringify(type.slice(0, 40))}`);
  const publicKey = parsePublicKeyWire(decodeBase64(blob, "public key line"));
  return { publicKey, base64: publicKeyWire(publicKey).toString("base64"), comment: fields.slice(2).join(" ") };
}

/** OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of sha256(wire blob). */
export function fingerprint(publicKey: Uint8Array): string {
  return `SHA256:${createHash("sha256").update(publicKeyWire(publicKey)).digest("base64").replace(/=+$/, "")}`;
}

// --- OpenSSH private key files ------------------------------------------------------------------

export function generateKeyPair(comment = ""): KeyPair {
  const kp = nacl.sign.keyPair.fromSeed(new Uint8Array(randomBytes(32)));
  return { publicKey: kp.publicKey, secretKey: kp.secretKey, comment };
}

/** The PEM-armoured `openssh-key-v1` file for an unencrypted key, 70-column lines as ssh-keygen writes. */
export function formatPrivateKey(key: KeyPair): string {
  const check = randomBytes(4);
  let inner = Buffer.concat([
    check,
    check,
    sshString(KEY_TYPE),
    sshString(key.publicKey),
    sshString(key.secretKey),
    sshString(key.comment),
  ]);
  const pad: number[] = [];
  for (let i = 1; (inner.length + pad.length) % 8 !== 0; i++) pad.push(i);
  inner = Buffer.concat([inner, Buffer.from(pad)]);
  const body = Buffer.concat([
    AUTH_MAGIC,
    sshString("none"),
    sshString("none"),
    sshString(""),
    Buffer.from([0, 0, 0, 1]),
    sshString(publicKeyWire(key.publicKey)),
    sshString(inner),
  ]).toString("base64");
  const lines = body.match(/.{1,70}/g) ?? [];
  return `${PRIVATE_KEY_BEGIN}\n${lines.join("\n")}\n${PRIVATE_KEY_END}\n`;
}

/** Reads an unencrypted OpenSSH ed25519 private key file (what `ssh-keygen -t ed25519 -N ""` writes). */
export function parsePrivateKey(pem: string): KeyPair {
  const text = pem.trim();
  if (text.length > 65_536) throw new KeyFormatError("private key: file is larger than 64 KiB");
  const begin = text.indexOf(PRIVATE_KEY_BEGIN);
  const end = text.indexOf(PRIVATE_KEY_END);
  if (begin < 0 || end < begin) throw new KeyFormatError(`private key: expected an "${PRIVATE_KEY_BEGIN}" block`);
  const b64 = text.slice(begin + PRIVATE_KEY_BEGIN.length, end).replace(/\s+/g, "");
  const data = decodeBase64(b64, "private key");
  if (!data.subarray(0, AUTH_MAGIC.length).equals(AUTH_MAGIC)) throw new KeyFormatError("private key: missing the openssh-key-v1 magic");
  const r = new WireReader(data.subarray(AUTH_MAGIC.length), "private key");
  const cipher = r.string("the cipher name");
  const kdf = r.string("the KDF name");
  r.bytes("the KDF options");
  if (cipher !== "none" || kdf !== "none") throw new KeyFormatError(`private key: encrypted keys are not supported (cipher ${cipher}, kdf ${kdf}); remove the passphrase`);
  const count = r.uint32("the key count");
  if (count !== 1) throw new KeyFormatError(`private key: expected exactly one key, found ${count}`);
  const outerPublic = parsePublicKeyWire(r.bytes("the public key"));
  const inner = new WireReader(r.bytes("the private section"), "private key section");
  const c1 = inner.uint32("the first check number");
  const c2 = inner.uint32("the second check number");
  if (c1 !== c2) throw new KeyFormatError("private key: check numbers differ (corrupt or encrypted file)");
  const type = inner.string("the key type");
  if (type !== KEY_TYPE) throw new KeyFormatError(`private key: expected key type ${KEY_TYPE}, got ${JSON.stringify(type.slice(0, 40))}`);
  const publicKey = inner.bytes("the public key");
  const secretKey = inner.bytes("the secret key");
  const comment = inner.string("the comment");
  if (publicKey.length !== 32 || secretKey.length !== 64) throw new KeyFormatError("private key: wrong ed25519 key lengths");
  if (!Buffer.from(publicKey).equals(Buffer.from(outerPublic))) throw new KeyFormatError("private key: the public and private halves do not belong together");
  // The seed determines the key pair; a file whose halves disagree is corrupt.
  const derived = nacl.sign.keyPair.fromSeed(new Uint8Array(secretKey.subarray(0, 32)));
  if (!Buffer.from(derived.publicKey).equals(publicKey)) throw new KeyFormatError("private key: the secret key does not produce the stored public key");
  return { publicKey: new Uint8Array(publicKey), secretKey: new Uint8Array(secretKey), comment };
}

// --- the token request (docs/protocol.md, "Signed token request") --------------------------------

/** Form-escapes like Go's url.QueryEscape: space as '+', everything but [A-Za-z0-9-_.~] percent-encoded. */
export function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, "+");
}

/** A query encoded as Go's url.Values.Encode does: keys sorted (stable for repeated keys), values form-escaped. */
export function encodeQuery(params: Array<[string, string]>): string {
  return [...params]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, v]) => `${queryEscape(k)}=${queryEscape(v)}`)
    .join("&");
}

export interface TokenRequest {
  realm: string;
  service: string;
  /** Space-separated scope items, as the challenge carries them. */
  scope: string;
  /** Unix seconds. */
  ts: number;
  /** 16 random bytes, unpadded base64url. */
  nonce: string;
}

export function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** The token URL exactly as the Ollama client requests it: realm query kept, then service, scopes, ts, nonce, sorted. */
export function tokenRequestURL(req: TokenRequest): string {
  const url = new URL(req.realm);
  const params: Array<[string, string]> = [...url.searchParams.entries()];
  params.push(["service", req.service]);
  for (const s of req.scope.split(" ").filter(Boolean)) params.push(["scope", s]);
  params.push(["ts", String(req.ts)], ["nonce", req.nonce]);
  return `${url.origin}${url.pathname}?${encodeQuery(params)}`;
}

/** `GET,<url>,<EMPTY_BODY_HASH>`: the bytes the signature covers. */
export function tokenRequestChallenge(url: string): string {
  return `GET,${url},${EMPTY_BODY_HASH}`;
}

// Signing and verifying go through Node's crypto (OpenSSL): tweetnacl, pure JavaScript, took 6-10
// ms for each signature and each check, on the main thread of the daemon and of the registry (a
// token request is both, and a registry checking them one after another managed about a hundred
// a second); OpenSSL takes a tenth of a millisecond. ed25519 signatures are deterministic, so the
// bytes are the same; OpenSSL also refuses a signature whose scalar is not reduced (a second
// encoding of a valid one), which tweetnacl let through. tweetnacl still derives key pairs from
// seeds, which Node cannot do from raw bytes.

/** The daemon's key as OpenSSL's, made once per key pair. */
const privateKeys = new WeakMap<KeyPair, KeyObject>();

const base64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");

function privateKeyOf(key: KeyPair): KeyObject {
  let k = privateKeys.get(key);
  if (!k) {
    k = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: base64url(key.secretKey.subarray(0, 32)), x: base64url(key.publicKey) }, format: "jwk" });
    privateKeys.set(key, k);
  }
  return k;
}

const messageBytes = (message: string | Uint8Array): Uint8Array => (typeof message === "string" ? Buffer.from(message, "utf8") : message);

export function sign(key: KeyPair, message: string | Uint8Array): Uint8Array {
  return new Uint8Array(signWithKey(null, messageBytes(message), privateKeyOf(key)));
}

export function verify(publicKey: Uint8Array, message: string | Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return verifyWithKey(null, messageBytes(message), createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: base64url(publicKey) }, format: "jwk" }), signature);
  } catch {
    // Bytes that are not a point on the curve.
    return false;
  }
}

/** The Authorization value of a signed request: `<base64 wire public key>:<base64 signature>`, no scheme. */
export function signedAuthorization(key: KeyPair, message: string): string {
  return `${publicKeyWire(key.publicKey).toString("base64")}:${Buffer.from(sign(key, message)).toString("base64")}`;
}

export interface SignedAuthorization {
  publicKey: Uint8Array;
  signature: Uint8Array;
}

/** Splits `<pubkey>:<signature>` at the first ':' and decodes both halves, or says what is wrong. */
export function parseSignedAuthorization(value: string): SignedAuthorization {
  if (value.length > 1024) throw new KeyFormatError("authorization: longer than 1024 characters");
  const i = value.indexOf(":");
  if (i < 0) throw new KeyFormatError('authorization: expected "<public key>:<signature>"');
  const publicKey = parsePublicKeyWire(decodeBase64(value.slice(0, i).trim(), "authorization public key"));
  const signature = decodeBase64(value.slice(i + 1).trim(), "authorization signature");
  if (signature.length !== 64) throw new KeyFormatError(`authorization: expected a 64-byte signature, got ${signature.length} bytes`);
  return { publicKey, signature: new Uint8Array(signature) };
}

/** True when `authorization` carries a valid signature over the token request for `url`. */
export function verifyTokenRequest(url: string, auth: SignedAuthorization): boolean {
  return verify(auth.publicKey, tokenRequestChallenge(url), auth.signature);
}

// --- publisher signatures of models (docs/protocol.md, "Model signatures") ----------------------

/**
 * The first line of every model signature payload. Token requests sign `GET,<url>,…` and login
 * links `POST,<url>,…`; no payload that starts with this line can be either, so a signature made
 * for one purpose is never valid for another.
 */
export const MODEL_SIGNATURE_PREFIX = "corral-model-signature-v1";

/** What a model signature binds: the registry host, the repository on it and the manifest digest. */
export interface SignedModel {
  /** `host[:port]` as in model names. */
  host: string;
  /** `namespace/model`. */
  repository: string;
  /** `sha256:<64 hex>` of the manifest bytes. */
  digest: string;
}

const SIGNED_HOST_RE = /^[A-Za-z0-9._\-:[\]]{1,350}$/;
const SIGNED_REPOSITORY_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,79}\/[A-Za-z0-9_][A-Za-z0-9._-]{0,79}$/;
const SIGNED_DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * The exact bytes a publisher signs: the prefix line, then `host=`, `repository=` and `digest=`
 * lines, each ending in a newline. Host and repository are lower-cased (names are case-insensitive,
 * docs/protocol.md, "Names and hosts"); each field is checked so that none can carry a newline or
 * pose as another field.
 */
export function modelSignaturePayload(m: SignedModel): string {
  if (!SIGNED_HOST_RE.test(m.host)) throw new KeyFormatError(`model signature: ${JSON.stringify(m.host.slice(0, 60))} is not a registry host`);
  if (!SIGNED_REPOSITORY_RE.test(m.repository)) throw new KeyFormatError(`model signature: ${JSON.stringify(m.repository.slice(0, 200))} is not a namespace/model repository`);
  if (!SIGNED_DIGEST_RE.test(m.digest)) throw new KeyFormatError(`model signature: ${JSON.stringify(m.digest.slice(0, 80))} is not a sha256 digest`);
  return `${MODEL_SIGNATURE_PREFIX}\nhost=${m.host.toLowerCase()}\nrepository=${m.repository.toLowerCase()}\ndigest=${m.digest}\n`;
}

/** The base64 ed25519 signature of a model's payload. */
export function signModel(key: KeyPair, m: SignedModel): string {
  return Buffer.from(sign(key, modelSignaturePayload(m))).toString("base64");
}

/** The body of `PUT /v2/<repository>/signatures/<digest>`. */
export interface SignatureUpload {
  host: string;
  /** The signer's `ssh-ed25519 AAAA…` line. */
  key: string;
  /** base64 of the 64-byte ed25519 signature. */
  signature: string;
}

/** One entry of `GET /v2/<repository>/signatures/<digest>`: a signature and the account the registry says holds its key. */
export interface SignatureRecord extends SignatureUpload {
  repository: string;
  digest: string;
  account: string;
  /** `SHA256:…` of `key`. */
  fingerprint: string;
  /** When the registry accepted it (ISO 8601). */
  signed_at: string;
}

/** Upload bodies larger than this are refused; a real one is about 250 bytes. */
export const MAX_SIGNATURE_UPLOAD_BYTES = 4096;
/** Signatures one manifest may carry in one repository (one per key). */
export const MAX_SIGNATURES_PER_MANIFEST = 16;
/** The largest `GET …/signatures/<digest>` answer a client reads. */
export const MAX_SIGNATURE_LIST_BYTES = MAX_SIGNATURES_PER_MANIFEST * 2048;

/** The signature's 64 bytes, or why the text is not one. */
export function parseModelSignature(text: string): Uint8Array {
  const bytes = decodeBase64(text.trim(), "model signature");
  if (bytes.length !== 64) throw new KeyFormatError(`model signature: expected 64 bytes, got ${bytes.length}`);
  return new Uint8Array(bytes);
}

/** Whether `signature` (base64) by `publicKey` covers exactly this host, repository and digest. */
export function verifyModelSignature(publicKey: Uint8Array, m: SignedModel, signature: string): boolean {
  let sig: Uint8Array;
  let payload: string;
  try {
    sig = parseModelSignature(signature);
    payload = modelSignaturePayload(m);
  } catch {
    return false;
  }
  return verify(publicKey, payload, sig);
}
