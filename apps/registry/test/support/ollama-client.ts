// A registry client that behaves exactly as Ollama's classic push and pull do (docs/protocol.md, "Registry sessions",
// "Pull", "Downloading a blob", "Push", "Uploading a blob", "Challenge" and "Signed token request"), so the registry is tested against the client it must serve: the same
// requests, headers, challenge parsing, host pinning, retry-once on 401, part planning, etag,
// Location handling and unauthenticated ranged part downloads.

import { createHash } from "node:crypto";
import {
  newNonce,
  signedAuthorization,
  tokenRequestChallenge,
  tokenRequestURL,
  encodeQuery,
  type KeyPair,
} from "@corral/shared/signing";
import { MediaType, type Manifest } from "@corral/shared/manifest";

export const OLLAMA_USER_AGENT = "ollama/0.33.0 (amd64 linux) Go/go1.24.1";

export class OllamaClientError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "OllamaClientError";
  }
}

export interface ClientOptions {
  /** Registry base URL, e.g. http://127.0.0.1:5005 (what --insecure makes of the name's host). */
  base: string;
  key?: KeyPair;
  /** Ollama plans parts of total/16 clamped to [100 MB, 1000 MB]; tests lower the clamp to get several parts. */
  minPartSize?: number;
  maxPartSize?: number;
  /** Records every request for assertions. */
  trace?: string[];
}

/** Reads realm/service/scope the way Ollama's classic parser does: `key="` up to a `"` followed by `,` or the end. */
export function parseChallengeLikeOllama(header: string): { realm: string; service: string; scope: string } {
  const value = header.replace(/^Bearer /, "");
  const get = (key: string): string => {
    const i = value.indexOf(`${key}=`);
    if (i < 0) return "";
    const start = i + key.length + 2;
    for (let j = start; j < value.length; j++) {
      if (value[j] === '"' && (j + 1 === value.length || value[j + 1] === ",")) return value.slice(start, j);
    }
    return value.slice(start);
  };
  return { realm: get("realm"), service: get("service"), scope: get("scope") };
}

export function planParts(total: number, min: number, max: number): Array<{ offset: number; size: number }> {
  if (total === 0) return [];
  const partSize = Math.min(Math.max(Math.floor(total / 16), min), max);
  const parts: Array<{ offset: number; size: number }> = [];
  for (let off = 0; off < total; off += partSize) parts.push({ offset: off, size: Math.min(partSize, total - off) });
  return parts;
}

export class OllamaRegistryClient {
  private token: string | undefined;
  readonly trace: string[];
  /** Every token request URL and Authorization sent, so tests can replay one. */
  readonly tokenRequests: Array<{ url: string; authorization: string | undefined }> = [];

  constructor(readonly opts: ClientOptions) {
    this.trace = opts.trace ?? [];
  }

  /** Send; on 401 fetch a token from the challenge and try once more. */
  async request(method: string, url: string, init: { headers?: Record<string, string>; body?: Buffer; redirect?: "manual" | "follow" } = {}): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { "User-Agent": OLLAMA_USER_AGENT, ...init.headers };
      if (this.token) headers["Authorization"] = `Bearer ${this.token}`;
      this.trace.push(`${method} ${new URL(url).pathname}`);
      const res = await fetch(url, { method, headers, redirect: init.redirect ?? "follow", ...(init.body ? { body: init.body } : {}) });
      if (res.status === 401) {
        await res.body?.cancel();
        if (attempt > 0) throw new OllamaClientError(401, "unauthorized: access denied");
        this.token = await this.fetchToken(res.headers.get("www-authenticate") ?? "", new URL(url).host);
        continue;
      }
      if (res.status === 404) {
        await res.body?.cancel();
        throw new OllamaClientError(404, "file does not exist");
      }
      if (res.status >= 400) throw new OllamaClientError(res.status, `${res.status}: ${await res.text()}`);
      return res;
    }
  }

  /** The signed token request (docs/protocol.md, "Signed token request"). */
  private async fetchToken(header: string, originalHost: string): Promise<string> {
    const c = parseChallengeLikeOllama(header);
    const realmHost = new URL(c.realm).host;
    if (realmHost !== originalHost) throw new OllamaClientError(0, `realm host "${realmHost}" does not match original host "${originalHost}"`);
    const url = tokenRequestURL({ realm: c.realm, service: c.service, scope: c.scope, ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
    const headers: Record<string, string> = { "User-Agent": OLLAMA_USER_AGENT };
    if (this.opts.key) headers["Authorization"] = signedAuthorization(this.opts.key, tokenRequestChallenge(url));
    this.tokenRequests.push({ url, authorization: headers["Authorization"] });
    this.trace.push(`GET ${new URL(url).pathname} (token)`);
    const res = await fetch(url, { headers });
    const text = await res.text();
    if (res.status >= 400) throw new OllamaClientError(res.status, text ? `${res.status}: ${text}` : String(res.status));
    return (JSON.parse(text) as { token: string }).token;
  }

  private repoURL(repo: string, path: string): string {
    return `${this.opts.base}/v2/${repo}${path}`;
  }

  /** Push the blobs one after another, then the manifest. */
  async push(repo: string, tag: string, manifest: Manifest, blobs: Map<string, Buffer>): Promise<void> {
    this.token = undefined;
    const descriptors = [...manifest.layers, ...(manifest.config.digest ? [manifest.config] : [])];
    for (const d of descriptors) {
      try {
        await this.request("HEAD", this.repoURL(repo, `/blobs/${d.digest}`));
        continue;
      } catch (e) {
        if (!(e instanceof OllamaClientError && e.status === 404)) throw e;
      }
      const data = blobs.get(d.digest);
      if (!data) throw new Error(`test setup: no bytes for ${d.digest}`);
      await this.uploadBlob(repo, d.digest, data, d.from);
    }
    const body = Buffer.from(JSON.stringify(manifest));
    await this.request("PUT", this.repoURL(repo, `/manifests/${tag}`), { headers: { "Content-Type": MediaType.manifestV2 }, body });
  }

  private async uploadBlob(repo: string, digest: string, data: Buffer, from: string | undefined): Promise<void> {
    let startURL = this.repoURL(repo, "/blobs/uploads/");
    if (from) startURL += `?${encodeQuery([["mount", digest], ["from", from]])}`;
    const start = await this.request("POST", startURL);
    if (start.status === 201) return;
    let location = start.headers.get("docker-upload-location") ?? start.headers.get("location") ?? "";
    if (!/^https?:\/\//.test(location)) throw new Error(`upload location is not absolute: ${location}`);
    const parts = planParts(data.length, this.opts.minPartSize ?? 100_000_000, this.opts.maxPartSize ?? 1_000_000_000);
    const md5s: Buffer[] = [];
    for (const p of parts) {
      const bytes = data.subarray(p.offset, p.offset + p.size);
      md5s.push(createHash("md5").update(bytes).digest());
      const res = await this.request("PATCH", location, {
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Length": String(p.size),
          "Content-Range": `${p.offset}-${p.offset + p.size - 1}`,
          "X-Redirect-Uploads": "1",
        },
        body: bytes,
        redirect: "manual",
      });
      if (res.status === 307) {
        const next = res.headers.get("docker-upload-location") ?? res.headers.get("location") ?? "";
        const storage = res.headers.get("location") ?? "";
        const put = await fetch(storage, { method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: bytes });
        if (put.status >= 400) throw new Error(`storage PUT failed: ${put.status}`);
        location = next;
      } else {
        location = res.headers.get("docker-upload-location") ?? res.headers.get("location") ?? "";
      }
    }
    const etag = `${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${parts.length}`;
    const u = new URL(location);
    const params: Array<[string, string]> = [...u.searchParams.entries(), ["digest", digest], ["etag", etag]];
    await this.request("PUT", `${u.origin}${u.pathname}?${encodeQuery(params)}`, { headers: { "Content-Type": "application/octet-stream", "Content-Length": "0" } });
  }

  /** Pull: the manifest bytes and every blob, fetched in ranged parts from the direct URL. */
  async pull(repo: string, tag: string): Promise<{ manifestBytes: Buffer; blobs: Map<string, Buffer> }> {
    this.token = undefined;
    const res = await this.request("GET", this.repoURL(repo, `/manifests/${tag}`), { headers: { Accept: MediaType.manifestV2 } });
    const manifestBytes = Buffer.from(await res.arrayBuffer());
    const manifest = JSON.parse(manifestBytes.toString("utf8")) as Manifest;
    const out = new Map<string, Buffer>();
    const descriptors = [...manifest.layers, ...(manifest.config?.digest ? [manifest.config] : [])];
    for (const d of descriptors) out.set(d.digest, await this.downloadBlob(repo, d.digest));
    return { manifestBytes, blobs: out };
  }

  private async directURL(repo: string, digest: string): Promise<string> {
    let url = this.repoURL(repo, `/blobs/${digest}`);
    const registryHost = new URL(url).hostname;
    for (let hops = 0; hops < 10; hops++) {
      const res = await this.request("GET", url, { redirect: "manual" });
      // The body is never read (docs/protocol.md, "Downloading a blob").
      await res.body?.cancel();
      const location = res.headers.get("location");
      if (res.status === 307 || res.status === 301 || res.status === 302 || res.status === 308) {
        if (!location) throw new Error("redirect without Location");
        const next = new URL(location, url);
        if (next.hostname === registryHost) {
          url = next.toString();
          continue;
        }
        if (res.status !== 307) throw new Error(`unexpected status code ${res.status}`);
        return next.toString();
      }
      if (res.status === 200) {
        if (!location) throw new Error("http: no Location header in response");
        return new URL(location, url).toString();
      }
      throw new Error(`unexpected status code ${res.status}`);
    }
    throw new Error("stopped after 10 redirects");
  }

  private async downloadBlob(repo: string, digest: string): Promise<Buffer> {
    const head = await this.request("HEAD", this.repoURL(repo, `/blobs/${digest}`));
    const total = Number(head.headers.get("content-length"));
    if (!Number.isSafeInteger(total)) throw new Error("HEAD without Content-Length");
    const parts = planParts(total, this.opts.minPartSize ?? 100_000_000, this.opts.maxPartSize ?? 1_000_000_000);
    const direct = await this.directURL(repo, digest);
    const buf = Buffer.alloc(total);
    // Up to 16 parts at once; no Authorization, default User-Agent, the status code is not checked.
    await Promise.all(
      parts.map(async (p) => {
        const res = await fetch(direct, { headers: { Range: `bytes=${p.offset}-${p.offset + p.size - 1}`, "User-Agent": "Go-http-client/1.1" } });
        const bytes = Buffer.from(await res.arrayBuffer());
        if (bytes.length < p.size) throw new Error(`part at ${p.offset}: got ${bytes.length} bytes, expected ${p.size}`);
        bytes.copy(buf, p.offset, 0, p.size);
      }),
    );
    const got = `sha256:${createHash("sha256").update(buf).digest("hex")}`;
    if (got !== digest) throw new Error(`digest mismatch, file must be downloaded again: want ${digest}, got ${got}`);
    return buf;
  }
}
