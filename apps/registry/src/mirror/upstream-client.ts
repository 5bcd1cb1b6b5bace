// The HTTP client of one mirrored upstream registry (docs/protocol.md, "Mirrors"): manifests and
// blobs by name, with the authentication Distribution-style registries ask for — a Bearer challenge
// answered at its realm (anonymously, or with the configured credentials as Basic), or Basic
// straight away. An upstream is not trusted: every answer is bounded, redirects go to http(s) only,
// and credentials and tokens never leave the upstream's own host except to its token realm over
// https.

import { MediaType } from "@corral/shared/manifest";
import { MAX_CHALLENGE_LENGTH, parseAuthChallenge } from "@corral/shared/challenge";
import type { MirrorConfig } from "../config.ts";

/** The upstream could not be reached or answered in a way that cannot be used; the message says how. */
export class UpstreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UpstreamError";
  }
}

export interface UpstreamManifest {
  bytes: Buffer;
  contentType: string | undefined;
  /** `Docker-Content-Digest` as the upstream sent it, if it did. */
  digest: string | undefined;
}

export interface UpstreamBlob {
  body: ReadableStream<Uint8Array>;
  /** Content-Length of the answer, when it had one. */
  length: number | undefined;
}

/** A token answer is a few hundred bytes; anything much larger is refused while it arrives. */
const MAX_TOKEN_BYTES = 64 << 10;
const MAX_REDIRECTS = 5;
/** How long a manifest or token request may take before the upstream counts as unreachable. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Tokens cached per scope; a mirror asks for a handful of scopes at once. */
const MAX_TOKENS = 1000;

const MANIFEST_ACCEPT = [MediaType.manifestV2, MediaType.ociManifest].join(", ");

type Auth = { kind: "bearer"; token: string; expires: number };

export class UpstreamClient {
  private readonly tokens = new Map<string, Auth>();
  private readonly origin: URL;
  private basicAccepted = false;

  constructor(
    readonly mirror: MirrorConfig,
    private readonly userAgent = "corral-registry (mirror)",
  ) {
    this.origin = new URL(mirror.upstream);
  }

  /**
   * The manifest `reference` (a tag or a digest) of `path` (`namespace/model`), read up to
   * `maxBytes`; undefined when the upstream does not know it or will not show it (404, 401 or 403
   * after authenticating): to the mirror's clients that is the same "unknown".
   */
  async manifest(path: string, reference: string, maxBytes: number): Promise<UpstreamManifest | undefined> {
    const res = await this.send(`/v2/${path}/manifests/${encodeURIComponent(reference)}`, path, { Accept: MANIFEST_ACCEPT });
    if (isUnknown(res.status)) {
      await discard(res);
      return undefined;
    }
    if (res.status !== 200) throw await failure(res, `the manifest ${path}:${reference}`);
    const declared = Number(res.headers.get("content-length") ?? "");
    if (Number.isFinite(declared) && declared > maxBytes) {
      await discard(res);
      throw new UpstreamError(`the upstream's manifest ${path}:${reference} is ${declared} bytes, more than the ${maxBytes} allowed`);
    }
    const bytes = await readBounded(res, maxBytes, `the manifest ${path}:${reference}`);
    return { bytes, contentType: res.headers.get("content-type") ?? undefined, digest: res.headers.get("docker-content-digest") ?? undefined };
  }

  /** The bytes of blob `digest` of `path`, as they arrive; undefined when the upstream does not have it. */
  async blob(path: string, digest: string, signal: AbortSignal): Promise<UpstreamBlob | undefined> {
    const res = await this.send(`/v2/${path}/blobs/${digest}`, path, {}, signal);
    if (isUnknown(res.status)) {
      await discard(res);
      return undefined;
    }
    if (res.status !== 200 || !res.body) throw await failure(res, `blob ${digest}`);
    const length = res.headers.get("content-length");
    return { body: res.body, length: length !== null && /^\d{1,16}$/.test(length) ? Number(length) : undefined };
  }

  /** One request to the upstream, answering a 401 challenge once and following redirects. */
  private async send(pathAndQuery: string, repository: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
    const scope = `repository:${repository}:pull`;
    for (let attempt = 0; ; attempt++) {
      const res = await this.follow(new URL(pathAndQuery, this.origin), headers, this.authorization(scope), signal);
      if (res.status !== 401 || attempt > 0) return res;
      const challenge = res.headers.get("www-authenticate") ?? "";
      await discard(res);
      if (!(await this.answer(challenge, scope))) return res;
    }
  }

  /** GET `url`, following up to MAX_REDIRECTS redirects to http(s) URLs; `auth` goes to the upstream's host only. */
  private async follow(url: URL, headers: Record<string, string>, auth: string | undefined, signal?: AbortSignal): Promise<Response> {
    for (let hops = 0; ; hops++) {
      const h: Record<string, string> = { "User-Agent": this.userAgent, ...headers };
      if (auth && url.host === this.origin.host && url.protocol === this.origin.protocol) h["Authorization"] = auth;
      const res = await request(url, h, signal);
      if (![301, 302, 303, 307, 308].includes(res.status)) return res;
      await discard(res);
      const location = res.headers.get("location");
      if (!location) throw new UpstreamError(`the upstream answered ${res.status} without a Location`);
      if (hops >= MAX_REDIRECTS) throw new UpstreamError(`the upstream redirected more than ${MAX_REDIRECTS} times`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new UpstreamError("the upstream redirected to something that is not a URL");
      }
      if (next.protocol !== "http:" && next.protocol !== "https:") throw new UpstreamError(`the upstream redirected to a ${next.protocol} URL; only http and https are followed`);
      url = next;
    }
  }

  private authorization(scope: string): string | undefined {
    const cached = this.tokens.get(scope);
    if (cached && cached.expires > Date.now()) return `Bearer ${cached.token}`;
    // An upstream that asked for Basic once asks for it on every repository.
    return this.basicAccepted ? this.basic() : undefined;
  }

  private basic(): string | undefined {
    const c = this.mirror.credentials;
    return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}` : undefined;
  }

  /** Learns how to authenticate from a challenge; false when there is nothing to try. */
  private async answer(header: string, scope: string): Promise<boolean> {
    if (header.length > MAX_CHALLENGE_LENGTH) throw new UpstreamError(`the upstream sent a WWW-Authenticate header of ${header.length} characters`);
    const challenge = parseAuthChallenge(header);
    if (challenge.scheme === "basic") {
      if (!this.mirror.credentials) return false;
      this.basicAccepted = true;
      return true;
    }
    if (challenge.scheme !== "bearer") return false;
    const realm = challenge.params["realm"];
    if (!realm) throw new UpstreamError("the upstream's Bearer challenge names no realm");
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UpstreamError("the upstream's token realm is not a URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new UpstreamError(`the upstream's token realm is a ${url.protocol} URL; only http and https are used`);
    if (challenge.params["service"]) url.searchParams.set("service", challenge.params["service"]);
    url.searchParams.set("scope", challenge.params["scope"] || scope);
    const headers: Record<string, string> = { "User-Agent": this.userAgent };
    // Credentials go to the realm only where nobody can read them on the way, or to the upstream itself.
    const basic = this.basic();
    if (basic && (url.protocol === "https:" || url.host === this.origin.host)) headers["Authorization"] = basic;
    const res = await request(url, headers);
    if (res.status !== 200) throw await failure(res, "a token");
    const body = await readBounded(res, MAX_TOKEN_BYTES, "the token answer");
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
    } catch {
      throw new UpstreamError("the upstream's token answer is not JSON");
    }
    const token = typeof parsed.token === "string" ? parsed.token : typeof parsed.access_token === "string" ? parsed.access_token : undefined;
    if (!token) throw new UpstreamError("the upstream's token answer holds no token");
    const lifetime = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60;
    // Renewed a little early, so a token never expires between its check and its use.
    this.remember(scope, { kind: "bearer", token, expires: Date.now() + Math.max(1, lifetime - 10) * 1000 });
    return true;
  }

  private remember(scope: string, auth: Auth): void {
    this.tokens.delete(scope);
    if (this.tokens.size >= MAX_TOKENS) this.tokens.delete(this.tokens.keys().next().value!);
    this.tokens.set(scope, auth);
  }
}

/** The statuses by which an upstream says it does not know a name (or will not say). */
function isUnknown(status: number): boolean {
  return status === 404 || status === 401 || status === 403;
}

/**
 * One GET. The answer's headers must come within REQUEST_TIMEOUT_MS; after that only `signal` (the
 * caller's) ends it, so a blob may take as long as it keeps moving.
 */
async function request(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
  const ctl = new AbortController();
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    ctl.abort(new Error("no answer in time"));
  }, REQUEST_TIMEOUT_MS);
  const onAbort = (): void => ctl.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await fetch(url, { headers, redirect: "manual", signal: ctl.signal });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = late ? `no answer in ${REQUEST_TIMEOUT_MS / 1000} s` : (cause?.code ?? cause?.message ?? (e as Error).message);
    throw new UpstreamError(`${url.host} cannot be reached (${why})`);
  } finally {
    clearTimeout(timer);
  }
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {});
}

async function failure(res: Response, what: string): Promise<UpstreamError> {
  const text = (await readBounded(res, 4096, "the error").catch(() => Buffer.alloc(0))).toString("utf8");
  let message = "";
  try {
    message = (JSON.parse(text) as { errors?: Array<{ message?: string }> }).errors?.[0]?.message ?? "";
  } catch {
    // not a registry error body
  }
  return new UpstreamError(`the upstream answered ${res.status} for ${what}${message ? `: ${message.slice(0, 200)}` : ""}`);
}

async function readBounded(res: Response, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > max) throw new UpstreamError(`${what} from the upstream is larger than ${max} bytes`);
      parts.push(Buffer.from(value));
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    if (e instanceof UpstreamError) throw e;
    throw new UpstreamError(`the upstream broke off ${what} (${(e as Error).message})`);
  }
  return Buffer.concat(parts);
}
