// The upload session limit and expiry on real PostgreSQL with two replicas on one database (PGlite
// has a single connection, so it cannot show a race): many session starts at once, spread over
// both replicas, admit exactly REGISTRY_UPLOAD_LIMIT; sweeps running on both at once remove each
// expired session exactly once, row and bytes.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { inArray, sql } from "drizzle-orm";
import { formatPublicKeyLine, generateKeyPair, newNonce, signedAuthorization, tokenRequestChallenge, tokenRequestURL } from "@corral/shared/signing";
import { ensurePostgres, startPostgres, type Postgres } from "../../../test/helpers/postgres.ts";
import { createApp } from "../src/app.ts";
import { openPostgres } from "../src/db/open.ts";
import { uploads } from "../src/db/schema.ts";
import { openRegistry, type Registry } from "../src/registry.ts";
import { directAdmin } from "../src/services/admin.ts";
import { expireUploads } from "../src/services/uploads.ts";
import { testConfig } from "./support/fixtures.ts";
import { BASE, bearer } from "./support/in-process.ts";

const pgAvailable = !("skip" in ensurePostgres());
const skip = !pgAvailable && "PostgreSQL cannot be installed here";
const LIMIT = 5;
const TTL_SECONDS = 600;
const key = generateKeyPair();
let pg: Postgres | undefined;
const replicas: Array<{ registry: Registry; request(path: string, init?: RequestInit): Promise<Response>; cleanup(): void }> = [];
let token: string;

before(async () => {
  if (!pgAvailable) return;
  pg = await startPostgres();
  const url = await pg.createDatabase("upload_sessions");
  for (let i = 0; i < 2; i++) {
    const t = testConfig({ REGISTRY_URL: BASE, REGISTRY_UPLOAD_LIMIT: String(LIMIT), REGISTRY_UPLOAD_TTL: String(TTL_SECONDS) });
    // One blob store for both, as replicas share one bucket.
    const registry = await openRegistry(t.config, { db: await openPostgres(url), ...(replicas[0] ? { store: replicas[0].registry.store } : {}) });
    const app = createApp(registry);
    replicas.push({ registry, request: async (path, init) => app.request(`${BASE}${path}`, init), cleanup: t.cleanup });
  }
  await directAdmin(replicas[0]!.registry).addUser("alice", [formatPublicKeyLine(key.publicKey)]);
  const tokenURL = tokenRequestURL({ realm: `${BASE}/v2/token`, service: "registry.test", scope: "repository:alice/m:pull,push", ts: Math.floor(Date.now() / 1000), nonce: newNonce() });
  const res = await replicas[0]!.request(tokenURL.slice(BASE.length), { headers: { Authorization: signedAuthorization(key, tokenRequestChallenge(tokenURL)) } });
  token = ((await res.json()) as { token: string }).token;
});

after(async () => {
  for (const r of replicas) {
    await r.registry.close();
    r.cleanup();
  }
  await pg?.stop();
});

test("session starts racing on two replicas admit exactly the limit", { skip }, async () => {
  const attempts = 24;
  const answers = await Promise.all(
    Array.from({ length: attempts }, async (_, i) => {
      const res = await replicas[i % 2]!.request("/v2/alice/m/blobs/uploads/", { method: "POST", headers: bearer(token) });
      await res.arrayBuffer();
      return res.status;
    }),
  );
  assert.equal(answers.filter((s) => s === 202).length, LIMIT, answers.join(" "));
  assert.equal(answers.filter((s) => s === 429).length, attempts - LIMIT, answers.join(" "));
});

test("sweeps on both replicas at once remove each expired session once, row and bytes", { skip }, async () => {
  const reg = replicas[0]!.registry;
  const ids = (await reg.db.select({ id: uploads.id }).from(uploads)).map((u) => u.id);
  assert.equal(ids.length, LIMIT);
  for (const id of ids) {
    const res = await replicas[0]!.request(`/v2/alice/m/blobs/uploads/${id}`, { method: "PATCH", headers: bearer(token, { "Content-Range": "0-999" }), body: randomBytes(1000) });
    assert.equal(res.status, 202, await res.text());
  }
  await reg.db
    .update(uploads)
    .set({ updatedAt: sql`now() - make_interval(secs => ${TTL_SECONDS + 1})` })
    .where(inArray(uploads.id, ids));
  const removed = await Promise.all(replicas.flatMap((r) => [1, 2].map(() => expireUploads(r.registry, TTL_SECONDS))));
  assert.equal(removed.reduce((a, b) => a + b, 0), LIMIT, removed.join(" "));
  assert.equal((await reg.db.select({ id: uploads.id }).from(uploads)).length, 0);
  const stored: string[] = [];
  for await (const u of reg.store.listUploads()) stored.push(u.id);
  assert.deepEqual(stored, []);
  const again = await replicas[1]!.request("/v2/alice/m/blobs/uploads/", { method: "POST", headers: bearer(token) });
  assert.equal(again.status, 202, "the account has room again");
});
