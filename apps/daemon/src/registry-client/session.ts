// One pull or push against one registry (§5.1, §5.2): base URL from the name's host, plain HTTP
// only with --insecure, and the 401 → signed token request → retry-once dance. The token lives
// as long as the operation.

import type { ModelName } from "@corral/shared/name";
import { newNonce, tokenRequestChallenge, tokenRequestURL } from "@corral/shared/signing";
import { VERSION } from "../version.ts";
import { StatusError } from "../errors.ts";
import { parseChallenge, type Challenge } from "./challenge.ts";
import { bodyText, bulkRequest, discard, headerValue, type BulkResponse } from "./bulk-http.ts";
import type { Readable } from "node:stream";
import type { ClientRequest } from "node:http";

/** Signs token requests with the daemon's ed25519 key. */
export interface Signer {
  /** `<base64 of the SSH wire public key>:<base64 of the signature>` for a message. */
  authorization(message: string): string;
  /** The `ssh-ed25519 AAAA…` line to register on a registry. */
  publicKeyLine(): string;
}

export const USER_AGENT = `corral/${VERSION} (${process.arch} ${process.platform}) Node/${process.version}`;

export class RegistryError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export class NotFoundError extends RegistryError {
  constructor() {
    super(404, "file does not exist");
  }
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: () => RequestInit["body"] | undefined;
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
  header(name: string): string | null;
  text(): Promise<string>;
  discard(): Promise<void>;
}

export class RegistrySession {
  readonly base: string;
  readonly repository: string;
  private token: string | undefined;

  constructor(
    readonly name: ModelName,
    readonly insecure: boolean,
    private readonly signer: Signer | undefined,
  ) {
    if (name.scheme === "http" && !insecure) throw new StatusError(400, "insecure protocol http");
    this.base = `${insecure ? "http" : "https"}://${name.host}`;
    this.repository = name.repository();
  }

  /** Headers that carry the current token, for requests made outside this session (range downloads). */
  credentials(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  url(path: string): string {
    return `${this.base}/v2/${this.repository}${path}`;
  }

  /** Rewrites a registry-given URL to http when --insecure is set (§5.1). */
  fix(url: string): string {
    const u = new URL(url, this.base);
    if (this.insecure && u.protocol === "https:") u.protocol = "http:";
    return u.toString();
  }

  async request(method: string, url: string, opts: RequestOptions = {}): Promise<Response> {
    return this.exchange(method, url, opts, async (headers) => {
      const body = opts.body?.();
      const res = await fetch(this.fix(url), {
        method,
        headers,
        redirect: opts.redirect ?? "follow",
        ...(body !== undefined ? { body, duplex: "half" } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      } as RequestInit);
      return {
        value: res,
        status: res.status,
        header: (n) => res.headers.get(n),
        text: () => res.text().catch(() => ""),
        discard: async () => void (await res.body?.cancel()),
      };
    });
  }

  /**
   * The same exchange for blob bytes, over node:http (see bulk-http.ts): the body, when given, is
   * made afresh for each attempt; redirects are never followed.
   */
  async stream(method: string, url: string, opts: { headers?: Record<string, string>; body?: () => Readable | ((req: ClientRequest) => Promise<void>); signal?: AbortSignal; accept?: number[] } = {}): Promise<BulkResponse> {
    return this.exchange(method, url, opts, async (headers) => {
      const res = await bulkRequest(this.fix(url), { method, headers, ...(opts.body ? { body: opts.body() } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      return {
        value: res,
        status: res.status,
        header: (n) => headerValue(res.headers, n),
        text: () => bodyText(res.body).catch(() => ""),
        discard: async () => discard(res.body),
      };
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
        if ((e as Error).name === "AbortError") throw e;
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new RegistryError(0, `${method} ${url}: ${cause?.code ?? cause?.message ?? (e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      if (opts.accept?.includes(res.status)) return res.value;
      if (res.status === 401) {
        await res.discard();
        if (attempt > 0) throw new RegistryError(401, "unauthorized: access denied");
        this.token = await this.fetchToken(parseChallenge(res.header("www-authenticate") ?? ""), new URL(this.fix(url)).host, opts.signal);
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

  /** §6.3: the realm must be on the host that challenged us; the request is signed, not sent bare. */
  private async fetchToken(c: Challenge, host: string, signal?: AbortSignal): Promise<string> {
    if (!c.realm) throw new RegistryError(401, "unauthorized: the registry sent no token realm");
    const realm = new URL(c.realm);
    if (realm.host !== host) throw new RegistryError(401, `realm host "${realm.host}" does not match original host "${host}"`);
    const url = tokenRequestURL({ ...c, ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
    const headers: Record<string, string> = { "User-Agent": USER_AGENT };
    if (this.signer) headers["Authorization"] = this.signer.authorization(tokenRequestChallenge(url));
    let res: Response;
    try {
      res = await fetch(url, { headers, ...(signal ? { signal } : {}) });
    } catch (e) {
      throw new RegistryError(0, `token request to ${realm.origin}: ${(e as Error).message}`);
    }
    const text = await res.text();
    if (res.status >= 400) throw new RegistryError(res.status, text.trim() ? `${res.status}: ${text.trim()}` : String(res.status));
    try {
      const token = (JSON.parse(text) as { token?: unknown }).token;
      if (typeof token === "string" && token) return token;
    } catch {
      // fall through to the error below
    }
    throw new RegistryError(500, `token endpoint ${realm.origin}${realm.pathname} answered without a token`);
  }
}
