// Upload sessions are bounded. Each account may hold REGISTRY_UPLOAD_LIMIT open sessions: the next
// is refused with 429 until one is finished or cancelled, and at the limit the account's own
// expired sessions are dropped first. Anonymous callers open none. Sessions idle longer than
// REGISTRY_UPLOAD_TTL are expired (row and bytes, through the blob store) exactly once however many
// replicas sweep, and a chunk still arriving keeps its session alive.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { eq, inArray, sql } from "drizzle-orm";
import { formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { uploads } from "../src/db/schema.ts";
import { directAdmin } from "../src/services/admin.ts";
import { appendChunk, expireUploads, findUpload } from "../src/services/uploads.ts";
import { bearer, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { makeModel } from "./support/fixtures.ts";

const LIMIT = 3;
const TTL_SECONDS = 3600;
const keys = { alice: generateKeyPair(), bob: generateKeyPair() };

let r: InProcess;
let alice: string;
let bob: string;

before(async () => {
  r = await startInProcess({ REGISTRY_UPLOAD_LIMIT: String(LIMIT), REGISTRY_UPLOAD_TTL: String(TTL_SECONDS) });
  const admin = directAdmin(r.registry);
  for (const [name, key] of Object.entries(keys)) await admin.addUser(name, [formatPublicKeyLine(key.publicKey)]);
  alice = await r.token(keys.alice, "repository:alice/a:pull,push repository:alice/b:pull,push repository:alice/pub:pull,push");
  bob = await r.token(keys.bob, "repository:bob/a:pull,push");
});

after(async () => {
  await r?.close();
});

interface Opened {
  id: string;
  path: string;
}

async function open(token: string | undefined, repo: string): Promise<Response> {
  return r.request(`/v2/${repo}/blobs/uploads/`, { method: "POST", headers: bearer(token) });
}

async function opened(token: string, repo: string): Promise<Opened> {
  const res = await open(token, repo);
  assert.equal(res.status, 202, await res.text());
  const id = res.headers.get("docker-upload-uuid")!;
  return { id, path: new URL(res.headers.get("location")!).pathname };
}

async function patch(token: string, s: Opened, bytes: Buffer): Promise<void> {
  const res = await r.request(s.path, { method: "PATCH", headers: bearer(token, { "Content-Range": `0-${bytes.length - 1}` }), body: bytes });
  assert.equal(res.status, 202, await res.text());
}

async function cancel(token: string, s: Opened): Promise<void> {
  assert.equal((await r.request(s.path, { method: "DELETE", headers: bearer(token) })).status, 204);
}

async function rowExists(id: string): Promise<boolean> {
  return (await r.registry.db.select({ id: uploads.id }).from(uploads).where(eq(uploads.id, id))).length === 1;
}

async function storedUploadIds(): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const u of r.registry.store.listUploads()) ids.add(u.id);
  return ids;
}

/** Moves the sessions' last activity back in time, as if nothing had arrived for `seconds`. */
async function makeIdle(ids: string[], seconds: number): Promise<void> {
  await r.registry.db
    .update(uploads)
    .set({ updatedAt: sql`now() - make_interval(secs => ${seconds})` })
    .where(inArray(uploads.id, ids));
}

test("an account holding REGISTRY_UPLOAD_LIMIT sessions is refused the next with 429 until it finishes or cancels one", async () => {
  const held: Opened[] = [];
  for (let i = 0; i < LIMIT; i++) held.push(await opened(alice, "alice/a"));

  const refused = await open(alice, "alice/a");
  assert.equal(refused.status, 429);
  const body = (await refused.json()) as { errors: Array<{ code: string; message: string }> };
  assert.equal(body.errors[0]!.code, "TOOMANYREQUESTS");
  const message = body.errors[0]!.message;
  assert.match(message, new RegExp(`${LIMIT} upload sessions are open`), message);
  assert.match(message, /finish or cancel/, message);
  assert.match(message, /REGISTRY_UPLOAD_LIMIT/, message);
  assert.equal((await open(alice, "alice/b")).status, 429, "the limit is the account's, not the repository's");
  const bobs = await opened(bob, "bob/a");

  await cancel(alice, held.shift()!);
  held.push(await opened(alice, "alice/b"));
  assert.equal((await open(alice, "alice/a")).status, 429);

  const data = randomBytes(10_000);
  const finishing = held.shift()!;
  await patch(alice, finishing, data);
  const put = await r.request(`${finishing.path}?digest=${sha256Bytes(data)}`, { method: "PUT", headers: bearer(alice) });
  assert.equal(put.status, 201, await put.text());
  held.push(await opened(alice, "alice/a"));
  assert.equal((await open(alice, "alice/a")).status, 429);

  for (const s of held) await cancel(alice, s);
  await cancel(bob, bobs);
});

test("at the limit, the account's own expired sessions are dropped first, bytes included", async () => {
  const held: Opened[] = [];
  for (let i = 0; i < LIMIT; i++) held.push(await opened(alice, "alice/a"));
  const stale = held.shift()!;
  await patch(alice, stale, randomBytes(5000));
  const bobsStale = await opened(bob, "bob/a");
  await patch(bob, bobsStale, randomBytes(5000));
  await makeIdle([stale.id, bobsStale.id], TTL_SECONDS + 60);
  assert.ok((await storedUploadIds()).has(stale.id));

  held.push(await opened(alice, "alice/a"));
  assert.equal(await rowExists(stale.id), false, "the expired session's row is gone");
  assert.equal((await storedUploadIds()).has(stale.id), false, "the expired session's bytes are gone");
  assert.equal(await rowExists(bobsStale.id), true, "another account's sessions are not touched by this request");
  assert.equal((await open(alice, "alice/a")).status, 429, "the sessions that are not expired still count");

  for (const s of held) await cancel(alice, s);
  await cancel(bob, bobsStale);
});

test("anonymous callers cannot open upload sessions, not even on a public repository", async () => {
  await pushModel(r, alice, { repo: "alice/pub", tag: "latest", model: makeModel(2000) });
  await directAdmin(r.registry).setVisibility("alice/pub", "public");
  const before = (await r.registry.db.select({ id: uploads.id }).from(uploads)).length;
  const bare = await open(undefined, "alice/pub");
  assert.equal(bare.status, 401, await bare.text());
  const anonymous = await r.token(undefined, "repository:alice/pub:pull,push");
  const withToken = await open(anonymous, "alice/pub");
  assert.equal(withToken.status, 401, await withToken.text());
  assert.equal((await r.registry.db.select({ id: uploads.id }).from(uploads)).length, before, "no session was created");
});

test("expiry removes sessions idle longer than the TTL, row and bytes, once however many replicas sweep", async () => {
  const stale = [await opened(bob, "bob/a"), await opened(bob, "bob/a")];
  const fresh = await opened(bob, "bob/a");
  for (const s of [...stale, fresh]) await patch(bob, s, randomBytes(3000));
  const reg = r.registry;
  await expireUploads(reg, TTL_SECONDS); // anything an earlier test left expired
  await makeIdle(stale.map((s) => s.id), TTL_SECONDS + 1);
  // Three sweeps at once, as three replicas on one database would run them.
  const removed = await Promise.all([1, 2, 3].map(() => expireUploads(reg, TTL_SECONDS)));
  assert.equal(removed.reduce((a, b) => a + b, 0), stale.length, `each expired session is removed by exactly one sweep: ${removed.join(", ")}`);
  const stored = await storedUploadIds();
  for (const s of stale) {
    assert.equal(await rowExists(s.id), false);
    assert.equal(stored.has(s.id), false, "its bytes are gone from the blob store");
    assert.equal((await r.request(s.path, { headers: bearer(bob) })).status, 404);
  }
  assert.equal(await rowExists(fresh.id), true, "a session within its TTL stays");
  assert.ok(stored.has(fresh.id));
  await cancel(bob, fresh);
});

test("a chunk that keeps arriving for longer than the TTL keeps its session", async () => {
  const ttl = 1;
  const s = await opened(bob, "bob/a");
  const reg = r.registry;
  const row = await findUpload(reg.db, await repositoryOf(s.id), s.id);
  const pieces = 12;
  const piece = randomBytes(1000);
  let sent = 0;
  let removed = 0;
  // One piece every quarter of a second, three times the one-second TTL in all, with a sweep before
  // each: unless the session is marked active while its chunk arrives, a sweep takes it.
  const body = new Readable({
    read() {
      if (sent === pieces) return void this.push(null);
      setTimeout(() => {
        expireUploads(reg, ttl).then(
          (n) => {
            removed += n;
            sent++;
            this.push(piece);
          },
          (e: unknown) => this.destroy(e as Error),
        );
      }, 250);
    },
  });
  const size = await appendChunk(reg, row, { offset: 0, body, length: pieces * piece.length, ttlSeconds: ttl });
  assert.equal(size, pieces * piece.length);
  assert.equal(removed, 0, "no sweep removed the session while its chunk was arriving");
  assert.equal(await rowExists(s.id), true);
  await cancel(bob, s);
});

async function repositoryOf(id: string): Promise<number> {
  const [row] = await r.registry.db.select({ repositoryId: uploads.repositoryId }).from(uploads).where(eq(uploads.id, id));
  assert.ok(row);
  return row.repositoryId;
}
