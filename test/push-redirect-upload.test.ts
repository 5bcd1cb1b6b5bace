// A push to a registry that sends chunks to object storage (docs/protocol.md, "Uploading a blob"): each PATCH carrying
// X-Redirect-Uploads may be answered 307 with the storage URL in Location and the next session
// URL in Docker-Upload-Location; the daemon then PUTs the same bytes there without credentials,
// and the final PUT carries the digest and the S3-style etag over every part. The registry here is
// a small HTTP server written for the test that behaves that way (Corral's own registry keeps
// upload bytes itself), with a second server standing in for the object store; one chunk of the
// model goes through the registry instead, so the etag also covers a part that was not redirected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createHash } from "node:crypto";
import { copyFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { fixtures } from "./fixtures.ts";

interface Session {
  parts: Buffer[];
  redirected: boolean[];
}

const sessions = new Map<string, Session>();
const stored = new Map<string, { bytes: Buffer; etag: string | null }>();
const storagePuts: Array<{ authorization: string | undefined; range: string | undefined }> = [];
let manifest: Buffer | undefined;
let registry: Server;
let storage: Server;
let registryURL = "";
let storageURL = "";
let daemon: Daemon;

const readBody = async (req: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};
const listen = (s: Server): Promise<string> =>
  new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve(`127.0.0.1:${(s.address() as { port: number }).port}`)));

before(async () => {
  storage = createServer(async (req, res) => {
    // /<session>/<part index>
    const [, id, n] = new URL(req.url!, "http://x").pathname.split("/");
    const body = await readBody(req);
    storagePuts.push({ authorization: req.headers.authorization, range: req.headers["content-range"] as string | undefined });
    const s = sessions.get(id!);
    if (req.method !== "PUT" || !s) return res.writeHead(400).end();
    s.parts[Number(n)] = body;
    res.writeHead(200).end();
  });
  registry = createServer(async (req, res) => {
    const url = new URL(req.url!, `http://${registryURL}`);
    const body = await readBody(req);
    const path = url.pathname;
    if (req.method === "HEAD" && path.includes("/blobs/")) return res.writeHead(404).end();
    if (req.method === "POST" && path.endsWith("/blobs/uploads/")) {
      const id = `u${sessions.size}`;
      sessions.set(id, { parts: [], redirected: [] });
      return res.writeHead(202, { Location: `http://${registryURL}/v2/team/story/blobs/uploads/${id}?n=0` }).end();
    }
    const upload = /\/blobs\/uploads\/(u\d+)$/.exec(path);
    if (upload) {
      const s = sessions.get(upload[1]!)!;
      const n = Number(url.searchParams.get("n"));
      const next = `http://${registryURL}/v2/team/story/blobs/uploads/${upload[1]}?n=${n + 1}`;
      if (req.method === "PATCH") {
        // Part 1 of a blob stays with the registry; every other part goes to storage.
        if (n === 1 || req.headers["x-redirect-uploads"] !== "1") {
          s.parts[n] = body;
          s.redirected[n] = false;
          return res.writeHead(202, { Location: next }).end();
        }
        s.redirected[n] = true;
        return res.writeHead(307, { Location: `http://${storageURL}/${upload[1]}/${n}`, "Docker-Upload-Location": next }).end();
      }
      if (req.method === "PUT") {
        const bytes = Buffer.concat(s.parts);
        const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
        if (url.searchParams.get("digest") !== digest) return res.writeHead(400).end("digest mismatch");
        stored.set(digest, { bytes, etag: url.searchParams.get("etag") });
        (s as Session & { digest?: string }).digest = digest;
        return res.writeHead(201).end();
      }
    }
    if (req.method === "PUT" && path === "/v2/team/story/manifests/latest") {
      manifest = body;
      return res.writeHead(201).end();
    }
    res.writeHead(404).end();
  });
  registryURL = await listen(registry);
  storageURL = await listen(storage);
  // Small parts, so the 1.2 MB model goes in several chunks.
  daemon = await startDaemon({ env: { CORRAL_TRANSFER_PART_MIN: String(256 << 10) } });
  const work = await mkdtemp(join(tmpdir(), "corral-redirect-"));
  await copyFile(fixtures.stories260K, join(work, "stories260K.gguf"));
  await writeFile(join(work, "Modelfile"), "FROM ./stories260K.gguf\nTEMPLATE {{ .Prompt }}\n");
  const c = await runCLI(daemon, ["create", `${registryURL}/team/story`, "-f", join(work, "Modelfile")]);
  assert.equal(c.code, 0, c.stderr);
});

after(async () => {
  await daemon?.stop();
  registry?.close();
  storage?.close();
});

test("chunks redirected to object storage arrive there, and the final PUT carries the digest and etag", async () => {
  const r = await runCLI(daemon, ["push", `${registryURL}/team/story`, "--insecure"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(manifest, "the manifest arrived");
  const layers = JSON.parse(manifest.toString()) as { config: { digest: string }; layers: Array<{ digest: string; size: number }> };
  const model = await readFile(fixtures.stories260K);
  const modelDigest = `sha256:${createHash("sha256").update(model).digest("hex")}`;
  for (const d of [layers.config.digest, ...layers.layers.map((l) => l.digest)]) assert.ok(stored.has(d), `blob ${d} was committed`);
  assert.deepEqual(stored.get(modelDigest)!.bytes, model);

  for (const [id, s] of sessions) {
    const digest = (s as Session & { digest?: string }).digest;
    assert.ok(digest, `session ${id} was finished`);
    // S3's multipart etag: md5 over the parts' raw md5s, a dash, the part count.
    const md5s = s.parts.map((p) => createHash("md5").update(p).digest());
    assert.equal(stored.get(digest)!.etag, `${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${s.parts.length}`, `etag of ${digest}`);
  }
  const modelSession = [...sessions.values()].find((s) => (s as Session & { digest?: string }).digest === modelDigest)!;
  assert.ok(modelSession.parts.length >= 3, `the model went in ${modelSession.parts.length} chunks`);
  assert.equal(modelSession.redirected[1], false);
  assert.equal(modelSession.redirected[0], true);
  // The storage URL is presigned: no registry token goes there, and it gets a plain PUT.
  assert.ok(storagePuts.length >= 2);
  for (const p of storagePuts) {
    assert.equal(p.authorization, undefined);
    assert.equal(p.range, undefined);
  }
});
