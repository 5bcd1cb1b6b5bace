// One pull or push against one registry (docs/protocol.md, "Registry sessions"): base URL from the name's host, plain HTTP
// only with --insecure, and the 401 → signed token request → retry-once dance. The token lives
// as long as the operation.
//
// The registry decides where the daemon goes next (upload Locations, redirects), so it can send
// the daemon to another registry, say the team's own. Ollama's client signs a token request for
// whichever host answered 401 as long as the realm is on that host, and then sends the one token
// it keeps to every later request, the first registry's included: a hostile registry that points
// an upload at the team's registry receives the team registry's token for the user's private
// repository. Here only the registry the model names (scheme, host and port of the session's
// base) is ever asked for a token, a 401 from anywhere else is an error, and the token goes only
// to that registry; redirects are followed by hand so that each hop is judged on its own host.

import type { ModelName } from "@corral/shared/name";
import { newNonce, tokenRequestChallenge, tokenRequestURL, type SignedModel } from "@corral/shared/signing";
import { VERSION } from "../version.ts";
import { StatusError } from "../errors.ts";
import { parseChallenge, type Challenge } from "./challenge.ts";
import { SingleFlight } from "@corral/shared/single-flight";
import { bodyText, bulkRequest, discard, headerValue, type BulkResponse } from "./bulk-http.ts";
import { MAX_TOKEN_RESPONSE_BYTES, readAtMost } from "./bounded-read.ts";
import { ForeignCredentialsError, NotFoundError, PlainHTTPRegistryError, RegistryError, TransportError, isPlainHTTPAnswer } from "./registry-errors.ts";
import type { Readable } from "node:stream";
import type { ClientRequest, IncomingMessage } from "node:http";

export { ForeignCredentialsError, NotFoundError, RegistryError, TransportError } from "./registry-errors.ts";

/** Signs token requests and pushed models with the daemon's ed25519 key. */
export interface Signer {
  /** `<base64 of the SSH wire public key>:<base64 of the signature>` for a message. */
  authorization(message: string): string;
  /** The `ssh-ed25519 AAAA…` line to register on a registry. */
  publicKeyLine(): string;
  /** The base64 publisher signature of a model (docs/protocol.md, "Model signatures"). */
  signModel(model: SignedModel): string;
}

export const USER_AGENT = `corral/${VERSION} (${process.arch} ${process.platform}) Node/${process.version}`;

/** A body: bytes, a stream, or a function that writes and ends the request (Content-Length among the headers). */
export type RequestBody = Buffer | Readable | ((req: ClientRequest) => Promise<void>);

/** What the registry answered: the body is the caller's to read or to discard. */
export interface RegistryResponse {
  status: number;
  /** The URL that gave this answer (after any redirects). */
  url: string;
  headers: { get(name: string): string | null };
  body: IncomingMessage;
  /** Lets the connection go back to the pool without keeping the body. */
  discard(): void;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: () => RequestBody;
  /** Follow redirects (default) or hand back 3xx responses. */
  redirect?: "follow" | "manual";
  signal?: AbortSignal;
  /** Statuses handed back to the caller instead of becoming errors. */
  accept?: number[];
}

/** A response as the token dance needs to see it, whichever transport carried it. */
interface Exchanged<T> {
  value: T;
  status: number;
  /** The URL that gave this answer (after any redirects). */
  url: string;
  header(name: string): string | null;
  text(): Promise<string>;
  discard(): Promise<void>;
}

/** Redirect statuses that carry a Location to follow (here and on the download thread's answers). */
export const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
export const MAX_REDIRECTS = 10;

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const { Authorization: _, ...rest } = headers;
  return rest;
}

export class RegistrySession {
  readonly base: string;
  readonly repository: string;
  private readonly origin: URL;
  private token: string | undefined;
  /** Token requests in flight, by scope: requests sent side by side that meet the same 401 share one. */
  private readonly tokenRequests = new SingleFlight<string, Promise<string>>();

  /**
   * `intent`: a push asks for `push,pull` on its repository at the first challenge, as the
   * protocol says (docs/protocol.md, "Challenge"), instead of a pull token for its first HEADs
   * and a second 401 and token request at its first upload.
   */
  constructor(
    readonly name: ModelName,
    readonly insecure: boolean,
    private readonly signer: Signer | undefined,
    private readonly intent: "pull" | "push" = "pull",
  ) {
    if (name.scheme === "http" && !insecure) throw new StatusError(400, "insecure protocol http");
    this.base = `${insecure ? "http" : "https"}://${name.host}`;
    this.origin = new URL(this.base);
    this.repository = name.repository();
  }

  /**
   * Whether a URL is on the registry the model names: same scheme, host and port (after --insecure
   * made it http). Only there does the token go, and only a 401 from there is answered with a
   * signed token request.
   */
  isRegistry(url: string | URL): boolean {
    try {
      return new URL(this.fix(url.toString())).origin === this.origin.origin;
    } catch {
      return false;
    }
  }

  /** Headers that carry the current token to `url`, for requests made on the download thread; none for other hosts. */
  credentials(url: string): Record<string, string> {
    return this.token && this.isRegistry(url) ? { Authorization: `Bearer ${this.token}` } : {};
  }

  /**
   * A 401 met on the download thread: a new token when the registry itself asked (an expired
   * one), the foreign-credentials error when another host did.
   */
  async reauthorize(url: string, challenge: string | null, signal?: AbortSignal): Promise<void> {
    if (!this.isRegistry(url)) throw this.foreignChallenge(url);
    this.token = await this.answerChallenge(parseChallenge(challenge ?? ""), signal);
  }

  /** The error for a 401 from `url`, a host other than the registry's. */
  foreignChallenge(url: string): ForeignCredentialsError {
    const there = new URL(url);
    // Same host, other scheme or port: name the origins, or the message would name one host twice.
    const [mine, theirs] = there.host === this.origin.host ? [this.origin.origin, there.origin] : [this.origin.host, there.host];
    return new ForeignCredentialsError(`registry ${mine} sent this request to ${theirs}, which asks for credentials; Corral signs token requests only for ${mine}`);
  }

  url(path: string): string {
    return `${this.base}/v2/${this.repository}${path}`;
  }

  /** Rewrites a registry-given URL to http when --insecure is set (docs/protocol.md, "Registry sessions"). */
  fix(url: string): string {
    const u = new URL(url, this.base);
    if (this.insecure && u.protocol === "https:") u.protocol = "http:";
    return u.toString();
  }

  /**
   * One request to the registry or where it sends the daemon, over node:http (bulk-http.ts), for
   * control requests and blob bytes alike. The body, when given, is made afresh for each attempt
   * and each hop. Redirects are followed here, so that the token goes only to hops on the
   * registry and a 401 is judged by the host that sent it; with `redirect: "manual"` they are
   * handed back (accept them).
   */
  async request(method: string, url: string, opts: RequestOptions = {}): Promise<RegistryResponse> {
    return this.exchange(method, url, opts, async (headers) => {
      let target = this.fix(url);
      let verb = method;
      let body = opts.body;
      for (let hops = 0; ; hops++) {
        const payload = body?.();
        if (Buffer.isBuffer(payload)) headers["Content-Length"] = String(payload.length);
        const res = await bulkRequest(target, {
          method: verb,
          headers: this.isRegistry(target) ? headers : withoutAuthorization(headers),
          ...(payload !== undefined ? { body: payload } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        const location = headerValue(res.headers, "location");
        if (opts.redirect !== "manual" && REDIRECTS.has(res.status) && location) {
          discard(res.body);
          if (hops >= MAX_REDIRECTS) throw new RegistryError(502, `${method} ${url}: more than ${MAX_REDIRECTS} redirects`);
          // Not rewritten to http: --insecure is about the registry, not where it sends the daemon.
          target = new URL(location, target).toString();
          // As browsers and fetch do: a 303, or a 301/302 answering a POST, turns into a GET without a body.
          if (res.status === 303 || ((res.status === 301 || res.status === 302) && verb === "POST")) {
            if (verb !== "HEAD") verb = "GET";
            body = undefined;
            delete headers["Content-Length"];
          }
          continue;
        }
        const answer: RegistryResponse = {
          status: res.status,
          url: target,
          headers: { get: (n) => headerValue(res.headers, n) },
          body: res.body,
          discard: () => discard(res.body),
        };
        return {
          value: answer,
          status: res.status,
          url: target,
          header: answer.headers.get,
          text: () => bodyText(res.body).catch(() => ""),
          discard: async () => discard(res.body),
        };
      }
    });
  }

  /** Adds the token, answers a 401 with a token request and one retry, and turns errors into RegistryErrors. */
  private async exchange<T>(method: string, url: string, opts: { headers?: Record<string, string>; signal?: AbortSignal; accept?: number[] }, send: (headers: Record<string, string>) => Promise<Exchanged<T>>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { "User-Agent": USER_AGENT, ...opts.headers };
      if (this.token) headers["Authorization"] = `Bearer ${this.token}`;
      let res: Exchanged<T>;
      try {
        res = await send(headers);
      } catch (e) {
        if ((e as Error).name === "AbortError" || e instanceof RegistryError) throw e;
        if (!this.insecure && isPlainHTTPAnswer(e)) throw new PlainHTTPRegistryError(this.origin.host);
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new TransportError(`${method} ${url}: ${cause?.code ?? cause?.message ?? (e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      if (opts.accept?.includes(res.status)) return res.value;
      if (res.status === 401) {
        await res.discard();
        if (!this.isRegistry(res.url)) throw this.foreignChallenge(res.url);
        if (attempt > 0) throw new RegistryError(401, "unauthorized: access denied");
        this.token = await this.answerChallenge(parseChallenge(res.header("www-authenticate") ?? ""), opts.signal);
        continue;
      }
      if (res.status === 404) {
        await res.discard();
        throw new NotFoundError();
      }
      if (res.status >= 400) {
        const text = (await res.text()).trim();
        throw new RegistryError(res.status, `${res.status}: ${text}`);
      }
      return res.value;
    }
  }

  /** A token for a challenge: one request per scope at a time, widened to `push,pull` for a push. */
  private answerChallenge(c: Challenge, signal?: AbortSignal): Promise<string> {
    const scope = this.intent === "push" ? withPush(c.scope, this.repository) : c.scope;
    return this.tokenRequests.run(scope, () => this.fetchToken({ ...c, scope }, signal));
  }

  /** The realm must be on the registry itself; the request is signed, not sent bare (docs/protocol.md, "Signed token request"). */
  private async fetchToken(c: Challenge, signal?: AbortSignal): Promise<string> {
    if (!c.realm) throw new RegistryError(401, "unauthorized: the registry sent no token realm");
    let realm: URL;
    try {
      realm = new URL(c.realm);
    } catch {
      throw new RegistryError(502, `the registry sent a token realm that is not a URL: ${JSON.stringify(c.realm.slice(0, 200))}`);
    }
    if (!this.isRegistry(realm)) {
      const [mine, theirs] = realm.host === this.origin.host ? [this.origin.origin, realm.origin] : [this.origin.host, realm.host];
      throw new ForeignCredentialsError(`registry ${mine} asks for a token from ${theirs}; Corral signs token requests only for ${mine}`);
    }
    const url = tokenRequestURL({ ...c, ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
    const headers: Record<string, string> = { "User-Agent": USER_AGENT };
    if (this.signer) headers["Authorization"] = this.signer.authorization(tokenRequestChallenge(url));
    let res: BulkResponse;
    try {
      res = await bulkRequest(url, { method: "GET", headers, ...(signal ? { signal } : {}) });
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      throw new TransportError(`token request to ${realm.origin}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (res.status >= 400) {
      const text = (await bodyText(res.body).catch(() => "")).trim();
      throw new RegistryError(res.status, text ? `${res.status}: ${text}` : String(res.status));
    }
    const text = (await readAtMost(res.body, MAX_TOKEN_RESPONSE_BYTES, "a token response")).toString("utf8");
    try {
      const token = (JSON.parse(text) as { token?: unknown }).token;
      if (typeof token === "string" && token) return token;
    } catch {
      // fall through to the error below
    }
    throw new RegistryError(500, `token endpoint ${realm.origin}${realm.pathname} answered without a token`);
  }
}

/** `scope` with `push` and `pull` among the actions of its item for `repository` (others as they are). */
function withPush(scope: string, repository: string): string {
  return scope
    .split(" ")
    .map((item) => {
      const m = /^repository:(.+):([^:]*)$/.exec(item);
      if (!m || m[1] !== repository) return item;
      const actions = m[2]!.split(",").filter(Boolean);
      return `repository:${repository}:${["push", "pull", ...actions.filter((a) => a !== "push" && a !== "pull")].join(",")}`;
    })
    .join(" ");
}
