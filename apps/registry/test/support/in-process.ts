// An in-process registry (PGlite in memory, blobs in a temporary directory) driven through
// `app.request()`, with helpers to get tokens the way a signing client does.

import { newNonce, signedAuthorization, tokenRequestChallenge, tokenRequestURL, type KeyPair } from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType } from "@corral/shared/manifest";
import { createApp } from "../../src/app.ts";
import { openPGlite } from "../../src/db/open.ts";
import { openRegistry, type Registry } from "../../src/registry.ts";
import { testConfig, type TestModel } from "./fixtures.ts";

export const BASE = "http://registry.test";

export interface InProcess {
  registry: Registry;
  request(path: string, init?: RequestInit): Promise<Response>;
  token(key: KeyPair | undefined, scope: string): Promise<string>;
  close(): Promise<void>;
}

export async function startInProcess(env: Record<string, string> = {}): Promise<InProcess> {
  // The registry's URL is configured, as in any deployment: signed requests count only for it.
  const t = testConfig({ REGISTRY_URL: BASE, ...env });
  const registry = await openRegistry(t.config, { db: await openPGlite(undefined) });
  const app = createApp(registry, { adminToken: "admin-secret" });
  const request = async (path: string, init?: RequestInit): Promise<Response> => app.request(path.startsWith("http") ? path : `${BASE}${path}`, init);
  return {
    registry,
    request,
    async token(key, scope) {
      const url = tokenRequestURL({ realm: `${BASE}/v2/token`, service: "registry.test", scope, ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
      const res = await request(url, key ? { headers: { Authorization: signedAuthorization(key, tokenRequestChallenge(url)) } } : {});
      if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    async close() {
      await registry.close();
      t.cleanup();
    },
  };
}

export function bearer(token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
}

/** Pushes a model with monolithic uploads (POST ?digest=) and a manifest PUT. */
export async function pushModel(r: InProcess, token: string, push: { repo: string; tag: string; model: TestModel }): Promise<string> {
  const { repo, tag, model } = push;
  for (const [digest, bytes] of model.blobs) {
    const res = await r.request(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", headers: bearer(token, { "Content-Length": String(bytes.length) }), body: bytes });
    if (res.status !== 201) throw new Error(`blob upload: ${res.status} ${await res.text()}`);
  }
  const body = Buffer.from(JSON.stringify(model.manifest));
  const res = await r.request(`/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: bearer(token, { "Content-Type": MediaType.manifestV2 }), body });
  if (res.status !== 201) throw new Error(`manifest PUT: ${res.status} ${await res.text()}`);
  return sha256Bytes(body);
}
