// The request hot paths stay exact while they avoid work: lookups memoised on the embedded database
// see every write at once, remembered bearer tokens still expire and still have to match, and blob
// bytes sent straight from the file arrive whole, in ranges, and leave no file open when the client
// goes away.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readlinkSync } from "node:fs";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType } from "@corral/shared/manifest";
import { issueToken } from "../src/auth/tokens.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { directAdmin } from "../src/services/admin.ts";
import { findLinkedBlob } from "../src/services/blobs.ts";
import { collectGarbage } from "../src/services/gc.ts";
import { findNamespaceAndRepository } from "../src/services/repositories.ts";
import { FilesystemBlobStore } from "../src/storage/filesystem.ts";
import { bearer, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";
import { makeModel, testConfig } from "./support/fixtures.ts";

const ALL = [{ type: "repository" as const, name: "alice/m", actions: ["pull" as const, "push" as const, "delete" as const] }];

describe("memoised lookups on the embedded database", () => {
  let r: InProcess;
  let token: string;
  const first = makeModel(5_000);
  const second = makeModel(6_000);

  before(async () => {
    r = await startInProcess();
    const admin = directAdmin(r.registry);
    await admin.addUser("alice", []);
    token = (await issueToken(r.registry.secrets.tokenKey, "registry.test", { sub: "alice", access: ALL }, 300)).token;
  });
  after(async () => r?.close());

  const manifestDigest = async (ref: string, anonymous = false): Promise<string | number> => {
    const res = await r.request(`/v2/alice/m/manifests/${ref}`, { headers: bearer(anonymous ? undefined : token) });
    await res.arrayBuffer();
    return res.status === 200 ? res.headers.get("docker-content-digest")! : res.status;
  };

  test("a repeated lookup is answered from memory, and any write to its tables drops it", async () => {
    const reg = r.registry;
    const name = { namespace: "alice", model: "m", path: "alice/m" };
    const a = await findNamespaceAndRepository(reg, name);
    assert.equal(await findNamespaceAndRepository(reg, name), a, "the second lookup returns the remembered value");
    assert.ok(Object.isFrozen(a), "remembered values cannot be modified by a caller");
    await pushModel(r, token, { repo: "alice/m", tag: "latest", model: first });
    const b = await findNamespaceAndRepository(reg, name);
    assert.notEqual(b, a, "creating the repository dropped the remembered miss");
    assert.ok(b.repository, "and the new repository is found");
  });

  test("a tag moved, a tag deleted and a manifest deleted are seen by the next GET", async () => {
    const d1 = await pushModel(r, token, { repo: "alice/m", tag: "latest", model: first });
    assert.equal(await manifestDigest("latest"), d1);
    assert.equal(await manifestDigest("latest"), d1);
    const d2 = await pushModel(r, token, { repo: "alice/m", tag: "latest", model: second });
    assert.equal(await manifestDigest("latest"), d2, "the tag points at the new manifest at once");
    assert.equal(await manifestDigest(d1), d1, "the old manifest is still there by digest");

    const delTag = await r.request(`/v2/alice/m/manifests/latest`, { method: "DELETE", headers: bearer(token) });
    assert.equal(delTag.status, 202);
    assert.equal(await manifestDigest("latest"), 404);

    const delManifest = await r.request(`/v2/alice/m/manifests/${d1}`, { method: "DELETE", headers: bearer(token) });
    assert.equal(delManifest.status, 202);
    assert.equal(await manifestDigest(d1), 404, "a manifest deleted by digest is gone");
  });

  test("a visibility change applies to the very next request", async () => {
    const admin = directAdmin(r.registry);
    await pushModel(r, token, { repo: "alice/m", tag: "stable", model: first });
    await admin.setVisibility("alice/m", "public");
    assert.equal(await manifestDigest("stable", true), sha256Bytes(Buffer.from(JSON.stringify(first.manifest))));
    await admin.setVisibility("alice/m", "private");
    assert.equal(await manifestDigest("stable", true), 401, "anonymous pulls stop as soon as the model is private");
  });

  test("an unlinked blob is no longer served", async () => {
    const [digest] = [...second.blobs.keys()];
    const get = async (): Promise<number> => {
      const res = await r.request(`/v2/alice/m/blobs/${digest}`, { headers: bearer(token) });
      await res.arrayBuffer();
      return res.status;
    };
    // Free the blob of every manifest that names it, then unlink it from the repository.
    for (const ref of ["stable", sha256Bytes(Buffer.from(JSON.stringify(second.manifest)))]) {
      await r.request(`/v2/alice/m/manifests/${ref}`, { method: "DELETE", headers: bearer(token) });
    }
    const stable = sha256Bytes(Buffer.from(JSON.stringify(first.manifest)));
    await r.request(`/v2/alice/m/manifests/${stable}`, { method: "DELETE", headers: bearer(token) });
    assert.equal(await get(), 200);
    assert.equal(await get(), 200);
    const del = await r.request(`/v2/alice/m/blobs/${digest}`, { method: "DELETE", headers: bearer(token) });
    assert.equal(del.status, 202, await del.text());
    assert.equal(await get(), 404);
  });

  test("a blob garbage collection removed is no longer served", async () => {
    const third = makeModel(7_000);
    const manifest = await pushModel(r, token, { repo: "alice/m", tag: "collected", model: third });
    const digest = third.manifest.layers[0]!.digest;
    const get = async (): Promise<number> => {
      const res = await r.request(`/v2/alice/m/blobs/${digest}`, { headers: bearer(token) });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await get(), 200);
    assert.equal(await get(), 200);
    const del = await r.request(`/v2/alice/m/manifests/${manifest}`, { method: "DELETE", headers: bearer(token) });
    assert.equal(del.status, 202);
    const report = await collectGarbage(r.registry, { graceSeconds: 0, uploadTTLSeconds: 3600 });
    assert.ok(report.blobsRemoved >= 1, JSON.stringify(report));
    const { repository } = await findNamespaceAndRepository(r.registry, { namespace: "alice", model: "m", path: "alice/m" });
    assert.equal(await findLinkedBlob(r.registry, repository!.id, digest), undefined, "the remembered link is gone");
    assert.equal(await get(), 404);
  });
});

describe("remembered bearer tokens", () => {
  let r: InProcess;
  const model = makeModel(2_000);

  before(async () => {
    r = await startInProcess();
    await directAdmin(r.registry).addUser("alice", []);
    const { token } = await issueToken(r.registry.secrets.tokenKey, "registry.test", { sub: "alice", access: ALL }, 300);
    await pushModel(r, token, { repo: "alice/m", tag: "latest", model });
  });
  after(async () => r?.close());

  const pull = async (token: string): Promise<{ status: number; text: string }> => {
    const res = await r.request(`/v2/alice/m/manifests/latest`, { headers: bearer(token) });
    return { status: res.status, text: await res.text() };
  };

  test("a token that verified once is refused after it expires", async () => {
    // The token must be used twice before it expires, however slow the machine: one that ran out
    // first is issued again with twice the lifetime. Two seconds to start with: `exp` counts from
    // the start of the current second, so a one-second token issued late in a second could expire
    // before its first use.
    let token = "";
    let exp = 0;
    for (let ttl = 2; ; ttl *= 2) {
      ({ token } = await issueToken(r.registry.secrets.tokenKey, "registry.test", { sub: "alice", access: ALL }, ttl));
      exp = (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number }).exp;
      const [first, second] = [await pull(token), await pull(token)];
      if (first.status === 200 && second.status === 200) break;
      assert.ok(Date.now() >= exp * 1000, `refused before it expired: ${first.status} ${first.text} / ${second.status} ${second.text}`);
    }
    // Until a whole second past `exp`, by the clock the registry reads.
    while (Date.now() < (exp + 1) * 1000) await new Promise((resolve) => setTimeout(resolve, (exp + 1) * 1000 - Date.now()));
    const late = await pull(token);
    assert.equal(late.status, 401);
    assert.match(late.text, /token has expired/);
  });

  test("a remembered token does not vouch for a forged one or one for another service", async () => {
    const { token } = await issueToken(r.registry.secrets.tokenKey, "registry.test", { sub: "alice", access: ALL }, 300);
    assert.equal((await pull(token)).status, 200);
    const [h, p, s] = token.split(".") as [string, string, string];
    const forged = `${h}.${p}.${s.slice(0, -2)}${s.endsWith("AA") ? "BA" : "AA"}`;
    assert.equal((await pull(forged)).status, 401);
    const elsewhere = (await issueToken(r.registry.secrets.tokenKey, "other.test", { sub: "alice", access: ALL }, 300)).token;
    assert.equal((await pull(elsewhere)).status, 401);
    const otherKey = (await issueToken(randomBytes(32), "registry.test", { sub: "alice", access: ALL }, 300)).token;
    assert.equal((await pull(otherKey)).status, 401);
  });
});

describe("blob bytes over a real socket", () => {
  let server: RunningServer;
  let cleanup: () => void;
  let token: string;
  // Not a multiple of any buffer size, so the last chunk is a partial one.
  const blob = randomBytes((24 << 20) + 12_345);
  const digest = sha256Bytes(blob);

  before(async () => {
    const t = testConfig();
    cleanup = t.cleanup;
    server = await startServer(t.config, { log: () => {} });
    await directAdmin(server.registry).addUser("alice", []);
    token = (await issueToken(server.registry.secrets.tokenKey, new URL(server.url).host, { sub: "alice", access: ALL }, 300)).token;
    const res = await fetch(`${server.url}/v2/alice/m/blobs/uploads/?digest=${digest}`, { method: "POST", headers: bearer(token), body: blob });
    assert.equal(res.status, 201, await res.text());
  });
  after(async () => {
    await server?.close();
    cleanup?.();
  });

  const openBlobFiles = (): number => {
    const path = (server.registry.store as FilesystemBlobStore).blobPath(digest);
    return readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    }).length;
  };

  test("the whole blob, ranges of it and HEAD", async () => {
    const whole = await fetch(`${server.url}/v2/alice/m/blobs/${digest}`, { headers: bearer(token) });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get("content-length"), String(blob.length));
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(blob), "every byte arrives in order");

    const location = whole.headers.get("location")!;
    for (const [range, start, end] of [
      ["bytes=0-0", 0, 0],
      ["bytes=1000-3000000", 1000, 3_000_000],
      [`bytes=${blob.length - 5000}-`, blob.length - 5000, blob.length - 1],
      ["bytes=-777", blob.length - 777, blob.length - 1],
      [`bytes=${(1 << 20) - 1}-${(3 << 20) + 1}`, (1 << 20) - 1, (3 << 20) + 1],
    ] as const) {
      // Both the bearer-token URL and the signed Location take ranges.
      for (const url of [`${server.url}/v2/alice/m/blobs/${digest}`, location]) {
        const res = await fetch(url, { headers: url === location ? { Range: range } : bearer(token, { Range: range }) });
        assert.equal(res.status, 206, `${range} on ${url}`);
        assert.equal(res.headers.get("content-range"), `bytes ${start}-${end}/${blob.length}`);
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(blob.subarray(start, end + 1)), `${range}: the right bytes`);
      }
    }

    const head = await fetch(`${server.url}/v2/alice/m/blobs/${digest}`, { method: "HEAD", headers: bearer(token) });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(blob.length));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    // No descriptor of the blob stays open: each is closed once its response is sent, as soon as
    // the machine gets to it (polled, with the test runner's overall limit for one that never is).
    while (openBlobFiles() > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  });

  test("a client that hangs up mid-blob leaves no file open and the next download is whole", async () => {
    for (let i = 0; i < 5; i++) {
      const abort = new AbortController();
      const res = await fetch(`${server.url}/v2/alice/m/blobs/${digest}`, { headers: bearer(token), signal: abort.signal });
      const reader = res.body!.getReader();
      await reader.read();
      abort.abort();
      await reader.closed.catch(() => {});
    }
    // Closing follows the hang-up as soon as the machine gets to it: polled, with the test
    // runner's overall limit for descriptors that are never closed.
    while (openBlobFiles() > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    const again = await fetch(`${server.url}/v2/alice/m/blobs/${digest}`, { headers: bearer(token) });
    assert.equal(sha256Bytes(Buffer.from(await again.arrayBuffer())), digest);
  });

  test("a manifest GET over the socket carries the stored bytes", async () => {
    const model = makeModel(1_000);
    for (const [d, bytes] of model.blobs) {
      const res = await fetch(`${server.url}/v2/alice/m/blobs/uploads/?digest=${d}`, { method: "POST", headers: bearer(token), body: bytes });
      assert.equal(res.status, 201);
    }
    const body = Buffer.from(JSON.stringify(model.manifest));
    const put = await fetch(`${server.url}/v2/alice/m/manifests/v1`, { method: "PUT", headers: bearer(token, { "Content-Type": MediaType.manifestV2 }), body });
    assert.equal(put.status, 201);
    for (let i = 0; i < 3; i++) {
      const get = await fetch(`${server.url}/v2/alice/m/manifests/v1`, { headers: bearer(token) });
      assert.ok(Buffer.from(await get.arrayBuffer()).equals(body));
      assert.equal(get.headers.get("docker-content-digest"), sha256Bytes(body));
    }
  });
});
