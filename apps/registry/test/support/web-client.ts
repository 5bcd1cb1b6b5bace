// Helpers for the web catalog suites: a real GGUF model (stories260K) as a pushable test model, the
// signed login-link request `corral login` makes, and a browser-like client that keeps its cookie.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType, encodeConfig, type Descriptor, type Manifest } from "@corral/shared/manifest";
import { EMPTY_BODY_HASH, encodeQuery, newNonce, signedAuthorization, type KeyPair } from "@corral/shared/signing";
import { BASE, type InProcess } from "./in-process.ts";
import type { TestModel } from "./fixtures.ts";

export const stories260KPath = fileURLToPath(new URL("../../../../test/fixtures/stories260K.gguf", import.meta.url));

/** stories260K with a template, a system prompt, params and a licence, as `corral create` would push it. */
export function storiesModel(extra: { system?: string; license?: string; template?: string; model?: Buffer; projector?: Buffer } = {}): TestModel {
  const blobs = new Map<string, Buffer>();
  const layer = (mediaType: string, bytes: Buffer): Descriptor => {
    const digest = sha256Bytes(bytes);
    blobs.set(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  };
  const layers = [
    layer(MediaType.model, extra.model ?? readFileSync(stories260KPath)),
    ...(extra.projector ? [layer(MediaType.projector, extra.projector)] : []),
    layer(MediaType.template, Buffer.from(extra.template ?? "{{ .System }}\n{{ .Prompt }}")),
    layer(MediaType.system, Buffer.from(extra.system ?? "You tell very short stories.")),
    layer(MediaType.params, Buffer.from('{"num_predict":32,"stop":["<|end|>"],"temperature":0}')),
    layer(MediaType.license, Buffer.from(extra.license ?? "MIT License\n\nCopyright (c) 2023 Andrej Karpathy")),
  ];
  const config = layer(
    MediaType.config,
    encodeConfig({ model_format: "gguf", model_family: "llama", model_families: ["llama"], model_type: "293K", file_type: "unknown", architecture: "amd64", os: "linux" }),
  );
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.manifestV2, config, layers };
  return { manifest, blobs };
}

/** POST /-/login/links signed by `key`, exactly as `corral login` sends it. */
export async function requestLoginLink(r: InProcess, key: KeyPair, tweak: { nonce?: string; ts?: number; method?: "GET" | "POST" } = {}): Promise<Response> {
  const url = `${BASE}/-/login/links?${encodeQuery([
    ["nonce", tweak.nonce ?? newNonce()],
    ["ts", String(tweak.ts ?? Math.floor(Date.now() / 1000))],
  ])}`;
  return r.request(url, { method: "POST", headers: { Authorization: signedAuthorization(key, `${tweak.method ?? "POST"},${url},${EMPTY_BODY_HASH}`) } });
}

/** A client that keeps the session cookie, sends forms the way a browser on this origin does. */
export class Browser {
  cookie: string | undefined;
  constructor(readonly r: InProcess) {}

  async get(path: string): Promise<{ status: number; html: string; res: Response }> {
    const res = await this.r.request(path, { headers: this.cookie ? { Cookie: this.cookie } : {} });
    return { status: res.status, html: await res.text(), res };
  }

  async post(path: string, fields: Record<string, string>, headers: Record<string, string> = { Origin: BASE }): Promise<Response> {
    const res = await this.r.request(path, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...(this.cookie ? { Cookie: this.cookie } : {}), ...headers },
      body: new URLSearchParams(fields).toString(),
      redirect: "manual",
    });
    const set = res.headers.get("set-cookie");
    if (set) {
      const m = /^corral_session=([^;]*)/.exec(set);
      if (m) this.cookie = m[1] ? `corral_session=${m[1]}` : undefined;
    }
    return res;
  }

  /** Asks for a link with `key` and follows it: the confirmation page, then the form it shows. */
  async signIn(key: KeyPair): Promise<void> {
    const res = await requestLoginLink(this.r, key);
    if (res.status !== 201) throw new Error(`login link: ${res.status} ${await res.text()}`);
    const { url } = (await res.json()) as { url: string };
    const path = new URL(url).pathname;
    const confirm = await this.get(path);
    if (confirm.status !== 200) throw new Error(`confirmation page: ${confirm.status}`);
    const done = await this.post(path, {});
    if (done.status !== 303 || !this.cookie) throw new Error(`sign-in: ${done.status} ${await done.text()}`);
  }

  /** The CSRF token the page's forms carry. */
  static csrf(html: string): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(html);
    if (!m) throw new Error("the page has no form with a CSRF token");
    return m[1]!;
  }
}
