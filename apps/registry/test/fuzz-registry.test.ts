// Property-based tests of the registry's request handlers in process: hostile repository names,
// references, digests, tags, Content-Range and Content-Length headers, query strings, malformed and
// oversized manifests and bogus Authorization values. Every answer is below 500; every 4xx carries
// an OCI error body whose code matches the status; a request that fails stores nothing (no blob,
// link, manifest, tag or repository appears).
// FUZZ_SEED=<n> replays a failure (fast-check prints the seed and path); FUZZ_RUNS=<n> scales it.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { count } from "drizzle-orm";
import fc from "fast-check";
import { formatPublicKeyLine, generateKeyPair } from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { MAX_MANIFEST_BYTES, MediaType } from "@corral/shared/manifest";
import { blobs, manifests, repositories, repositoryBlobs, tags } from "../src/db/schema.ts";
import { ErrorCodes, wireCode, type ErrorCode } from "../src/errors.ts";
import { directAdmin } from "../src/services/admin.ts";
import { makeModel } from "./support/fixtures.ts";
import { bearer, pushModel, startInProcess, type InProcess } from "./support/in-process.ts";

function runs(n: number): fc.Parameters<unknown> {
  const seed = process.env["FUZZ_SEED"];
  return { numRuns: Math.max(1, Math.round(Number(process.env["FUZZ_RUNS"] ?? 1) * n)), includeErrorInReport: true, ...(seed ? { seed: Number(seed) } : {}) };
}

const hostilePiece = fc.constantFrom(
  "..", ".", "%2e%2e", "%2f", "..%2f", "%00", "%0a", "%20", "~", "_", "-", "a", "Z", "0", "alice", "pub", "priv", "x".repeat(81),
  ":", "@", "%3a", "é", "%C3%A9", "%ff", "\u2024", "sha256:", "latest", "v2", "blobs", "manifests", "uploads", "_catalog",
);
const segment = fc.oneof({ weight: 4, arbitrary: fc.array(hostilePiece, { minLength: 1, maxLength: 4 }).map((p) => p.join("")) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map(encodeURIComponent) });
const repoPath = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("alice/pub", "alice/priv", "alice/fuzz", "ALICE/Pub", "nobody/model") },
  { weight: 2, arbitrary: fc.tuple(segment, segment).map(([a, b]) => `${a}/${b}`) },
  { weight: 1, arbitrary: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/")) },
);
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const digestText = (known: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: hex64.map((h) => `sha256:${h}`) },
    { weight: 1, arbitrary: hex64.map((h) => `sha256:${h.toUpperCase()}`) },
    { weight: 1, arbitrary: fc.tuple(hex64, hostilePiece).map(([h, p]) => `sha256:${h}${p}`) },
    { weight: 1, arbitrary: fc.constantFrom("sha256:", "sha512:abc", "sha256:../../etc/passwd", "sha256%3a00", "md5:x") },
    { weight: 1, arbitrary: segment },
  );

interface Counts {
  blobs: number;
  links: number;
  manifests: number;
  tags: number;
  repositories: number;
}

describe("registry handlers on hostile requests", () => {
  let r: InProcess;
  let aliceToken = "";
  let otherRepoToken = "";
  const key = generateKeyPair();
  const model = makeModel(2_000);
  const known = [...model.blobs.keys()];
  let manifestDigest = "";
  let uploadId = "";

  async function counts(): Promise<Counts> {
    const db = r.registry.db;
    const n = async (t: typeof blobs | typeof repositoryBlobs | typeof manifests | typeof tags | typeof repositories): Promise<number> =>
      Number((await db.select({ n: count() }).from(t))[0]?.n ?? 0);
    return { blobs: await n(blobs), links: await n(repositoryBlobs), manifests: await n(manifests), tags: await n(tags), repositories: await n(repositories) };
  }

  /** Sends one request and checks the answer; returns the status. */
  async function check(path: string, init: RequestInit, what: string): Promise<number> {
    const before = await counts();
    let res: Response;
    try {
      res = await r.request(path, init);
    } catch (e) {
      // Only a URL or header the fetch machinery itself refuses may fail before the app.
      assert.ok(e instanceof TypeError, `${what}: ${String(e)}`);
      return 0;
    }
    const text = await res.text();
    assert.ok(res.status < 500, `${what}: ${res.status} ${text.slice(0, 300)}`);
    // `..` segments can normalise a path out of /v2/ into the web catalog, which answers in HTML.
    const api = new URL(path, "http://registry.test").pathname.startsWith("/v2/");
    if (api && res.status >= 400 && !(init.method === "HEAD" && text === "")) {
      let body: { errors?: Array<{ code?: unknown; message?: unknown }> };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        assert.fail(`${what}: ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
      }
      const e = body.errors?.[0];
      assert.ok(e && typeof e.code === "string" && typeof e.message === "string", `${what}: no OCI error in ${text.slice(0, 200)}`);
      const code = e.code as ErrorCode;
      assert.ok(code in ErrorCodes, `${what}: unknown code ${code}`);
      // A code is answered with its own status or with that of an entry sent under it (413 SIZE_INVALID).
      const statuses = (Object.keys(ErrorCodes) as ErrorCode[]).filter((k) => wireCode(k) === code).map((k) => ErrorCodes[k].status as number);
      assert.ok(statuses.includes(res.status), `${what}: ${code} answered with ${res.status}`);
      if (res.status === 401 && !path.startsWith("/v2/token")) assert.ok(res.headers.get("www-authenticate")?.startsWith("Bearer "), `${what}: 401 without a challenge`);
    }
    if (res.status >= 300) {
      const afterwards = await counts();
      // Starting an upload creates its repository, as it must to hold the session; a monolithic
      // upload whose body then fails its digest leaves that (empty) repository behind.
      if (init.method === "POST" && /\/blobs\/uploads\/\?/.test(path)) afterwards.repositories = before.repositories;
      assert.deepEqual(afterwards, before, `${what}: a failed request (${res.status}) stored something: ${text.slice(0, 200)}`);
    }
    return res.status;
  }

  const auth = (): fc.Arbitrary<Record<string, string>> =>
    fc.oneof(
      { weight: 4, arbitrary: fc.constant({ Authorization: `Bearer ${aliceToken}` }) },
      { weight: 1, arbitrary: fc.constant({} as Record<string, string>) },
      { weight: 1, arbitrary: fc.constant({ Authorization: `Bearer ${otherRepoToken}` }) },
      {
        weight: 2,
        arbitrary: fc
          .oneof(
            fc.constantFrom("Bearer", "Bearer ", "bearer x", "Basic YWxpY2U6cGFzcw==", "Bearer a.b.c", "Bearer ..", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", "Bearer a b", "Token x", "Bearer \u00e9"),
            fc.nat({ max: 40 }).map((i) => `Bearer ${aliceToken.slice(0, i)}${aliceToken.slice(i + 1)}`),
            fc.nat({ max: 60 }).map((i) => `Bearer ${aliceToken.slice(0, -i - 1)}x`),
            fc.constant(`Bearer ${"x".repeat(20_000)}`),
            fc.string({ maxLength: 30 }).filter((s) => /^[\t\x20-\x7e]*$/.test(s)),
          )
          .map((a) => ({ Authorization: a })),
      },
    );

  before(async () => {
    r = await startInProcess();
    const admin = directAdmin(r.registry);
    await admin.addUser("alice", [formatPublicKeyLine(key.publicKey)]);
    aliceToken = await r.token(key, "repository:alice/pub:pull,push,delete repository:alice/priv:pull,push,delete repository:alice/fuzz:pull,push,delete");
    otherRepoToken = await r.token(key, "repository:alice/other:pull,push,delete");
    manifestDigest = await pushModel(r, aliceToken, { repo: "alice/pub", tag: "latest", model });
    await pushModel(r, aliceToken, { repo: "alice/priv", tag: "latest", model });
    await admin.setVisibility("alice/pub", "public");
    const start = await r.request("/v2/alice/pub/blobs/uploads/", { method: "POST", headers: bearer(aliceToken) });
    assert.equal(start.status, 202);
    uploadId = start.headers.get("docker-upload-uuid") ?? "";
    assert.ok(uploadId);
  });
  after(async () => r?.close());

  it("answers manifest requests with hostile repositories, references and bodies", async () => {
    const layer = fc.record(
      { mediaType: fc.constantFrom(MediaType.model, MediaType.template, "", "x/y"), digest: digestText(known), size: fc.oneof(fc.nat({ max: 400_000 }), fc.constantFrom(-1, 1.5, 2 ** 60, "1")) },
      { requiredKeys: [] },
    );
    const manifestBody = fc.oneof(
      { weight: 4, arbitrary: fc.record({ schemaVersion: fc.constantFrom(2, 1, "2"), mediaType: fc.constantFrom(MediaType.manifestV2, MediaType.ociManifest, "text/plain"), config: fc.oneof(layer, fc.constant(null)), layers: fc.array(layer, { maxLength: 3 }) }, { requiredKeys: [] }).map((m) => Buffer.from(JSON.stringify(m))) },
      { weight: 1, arbitrary: fc.constant(Buffer.from(JSON.stringify(model.manifest))) },
      { weight: 1, arbitrary: fc.json({ maxDepth: 2 }).map((t) => Buffer.from(t)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
      { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => Buffer.from("[".repeat(n) + "]".repeat(n))) },
    );
    const ref = fc.oneof(fc.constantFrom("latest", "v1", "LATEST", ".hidden", "-x", "a".repeat(81), "t@x"), segment, digestText([...known]).map(encodeURIComponent), fc.constant(encodeURIComponent(manifestDigest || "sha256:x")));
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          repo: repoPath,
          rf: ref,
          method: fc.constantFrom("GET", "HEAD", "PUT", "DELETE"),
          body: manifestBody,
          headers: auth(),
          len: fc.constantFrom(undefined, "0", "-1", "abc", "99999999999999999", String(MAX_MANIFEST_BYTES + 1)),
        }),
        async ({ repo, rf, method, body, headers, len }) => {
          const h: Record<string, string> = { ...headers, "Content-Type": MediaType.manifestV2 };
          if (len !== undefined) h["Content-Length"] = len;
          // DELETE of a real tag would change what later cases see; only hostile references are deleted.
          fc.pre(!(method === "DELETE" && (rf === "latest" || rf === encodeURIComponent(manifestDigest))));
          const status = await check(`/v2/${repo}/manifests/${rf}`, method === "PUT" ? { method, headers: h, body } : { method, headers }, `${method} /v2/${repo}/manifests/${rf}`);
          if (method === "PUT" && status === 201) assert.ok(repo.toLowerCase().startsWith("alice/"), "only alice's repositories accept pushes");
        },
      ),
      runs(120),
    );
  });

  it("answers blob and upload requests with hostile digests, ranges and lengths", async () => {
    const range = fc.oneof(
      fc.constantFrom(undefined, "", "0-0", "bytes 0-0", "0-", "-1", "1-0", "0-9999999999999999", "99999999999999999-1", "bytes=0-1", "0-1-2", "a-b", " 0-3 ", "0 - 3", "bytes */*", "\u00e9"),
      fc.tuple(fc.nat({ max: 100 }), fc.nat({ max: 100 })).map(([a, b]) => `${a}-${b}`),
    );
    const length = fc.constantFrom(undefined, "0", "1", "4", "-1", "1e3", "0x10", "18446744073709551616", " 4");
    const query = fc.record(
      { digest: digestText(known), mount: digestText(known), from: fc.oneof(repoPath, fc.constantFrom("model.gguf", "../../x", "alice/priv", "")), n: fc.constantFrom("0", "-1", "1e9", "abc", "99999999999") },
      { requiredKeys: [] },
    );
    const op = fc.constantFrom(
      "GET blob", "HEAD blob", "DELETE blob", "POST upload", "GET session", "PATCH session", "PUT session", "DELETE session", "GET tags", "GET catalog",
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          o: op,
          repo: repoPath,
          d: digestText(known),
          q: query,
          cr: range,
          len: length,
          body: fc.uint8Array({ maxLength: 8 }),
          headers: auth(),
          session: fc.constantFrom("real", "bogus", "../x", "%2e%2e"),
        }),
        async ({ o, repo, d, q, cr, len, body, headers, session }) => {
          const [method, what] = o.split(" ") as [string, string];
          const qs = new URLSearchParams(Object.entries(q).filter(([, v]) => v !== undefined) as Array<[string, string]>).toString();
          const id = session === "real" ? uploadId : session;
          const h: Record<string, string> = { ...headers };
          if (cr !== undefined) h["Content-Range"] = cr;
          if (len !== undefined) h["Content-Length"] = len;
          // Deleting a known blob from a real repository would change what later cases see.
          fc.pre(!(what === "blob" && method === "DELETE" && known.includes(d)));
          // `/v2/<x>/tags/list` with a one-part repository is the web catalog's shape; the example
          // test above pins what it must answer.
          fc.pre(!(what === "tags" && !repo.includes("/")));
          const path =
            what === "blob" ? `/v2/${repo}/blobs/${encodeURIComponent(d)}` :
            what === "upload" ? `/v2/${repo}/blobs/uploads/?${qs}` :
            what === "session" ? `/v2/${repo}/blobs/uploads/${id}?${qs}` :
            what === "tags" ? `/v2/${repo}/tags/list?${qs}` :
            `/v2/_catalog?${qs}`;
          const sendsBody = method === "POST" || method === "PATCH" || method === "PUT";
          await check(path, sendsBody ? { method, headers: h, body } : { method, headers: h }, `${method} ${path} ${JSON.stringify(h).slice(0, 120)}`);
        },
      ),
      runs(150),
    );
  });

  it("answers token requests with bogus scopes, timestamps, nonces and signatures", async () => {
    const scope = fc.oneof(
      fc.constantFrom("repository:alice/pub:pull", "repository:alice/priv:pull,push,delete", "repository:*:*", "registry:catalog:*", "repository:../x:pull", "repository:alice/pub:admin", ""),
      repoPath.map((p) => `repository:${p}:pull,push`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          s: scope,
          service: fc.constantFrom("", "registry.test", "evil"),
          ts: fc.constantFrom("", "0", "-1", "99999999999999", String(Math.floor(Date.now() / 1000))),
          nonce: fc.constantFrom("", "n", "abcdefgh", "x".repeat(200), "../../../x"),
          headers: auth(),
        }),
        async ({ s, service, ts, nonce, headers }) => {
          const q = new URLSearchParams({ scope: s, service, ts, nonce });
          const forged = headers["Authorization"]?.startsWith("Bearer ") ? { Authorization: headers["Authorization"].replace(/^Bearer /, "") } : headers;
          await check(`/v2/token?${q}`, { method: "GET", headers: forged }, `GET /v2/token?${q} ${JSON.stringify(forged).slice(0, 80)}`);
        },
      ),
      runs(80),
    );
  });

  it("answers unknown /v2/ paths with an OCI error, not a web page", async () => {
    for (const path of ["/v2/a/b/c/d", "/v2/@/tags/list", "/v2/x/y/tags/z", "/v2/alice/pub/nothing"]) {
      await check(path, { method: "GET", headers: bearer(aliceToken) }, `GET ${path}`);
    }
  });

  it("refuses an oversized manifest without storing it", async () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    assert.equal(await check("/v2/alice/fuzz/manifests/big", { method: "PUT", headers: bearer(aliceToken, { "Content-Type": MediaType.manifestV2 }), body: big }, "oversized PUT"), 413);
    const unknownBlob = { ...model.manifest, layers: [{ mediaType: MediaType.model, digest: sha256Bytes("nowhere"), size: 7 }] };
    assert.equal(await check("/v2/alice/fuzz/manifests/x", { method: "PUT", headers: bearer(aliceToken, { "Content-Type": MediaType.manifestV2 }), body: JSON.stringify(unknownBlob) }, "unknown blob"), 400);
  });
});
