// Property-based tests of the daemon's API in process: hostile model names, digests and file maps
// on /api/blobs, /api/create, /api/show, /api/delete, /api/copy and /api/pull. No request may write
// outside the models directory, leave a file there that is not a valid blob or manifest, or be
// answered with a 500 (pulls of valid names may fail like any pull of an unreachable registry).
// The store's own path builders are checked directly with the same hostile input.
// FUZZ_SEED=<n> replays a failure (fast-check prints the seed and path); FUZZ_RUNS=<n> scales it.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { Hono } from "hono";
import { fixtures } from "../../../test/fixtures.ts";
import { InvalidDigestError, sha256Bytes } from "@corral/shared/digest";
import { ModelName } from "@corral/shared/name";
import { createApp } from "../src/api/app.ts";
import { Scheduler } from "../src/runner/scheduler.ts";
import { Store } from "../src/store/store.ts";

// Valid names without a host resolve to a closed local port, so pulls fail at once.
const UNREACHABLE = "127.0.0.1:9";
process.env["CORRAL_REGISTRY"] = UNREACHABLE;

function runs(n: number): fc.Parameters<unknown> {
  const seed = process.env["FUZZ_SEED"];
  return { numRuns: Math.max(1, Math.round(Number(process.env["FUZZ_RUNS"] ?? 1) * n)), includeErrorInReport: true, ...(seed ? { seed: Number(seed) } : {}) };
}

const hostilePiece = fc.constantFrom(
  "..", ".", "/", "../", "..\\", "\\", "%2f", "%2e%2e", "..%2f", "%00", "\0", ":", "/etc/passwd", "~", " ", "\n",
  "\uff0e", "\u2215", "http://", "127.0.0.1:9/", "x/", "library/", "fuzz", "m", "latest", "_", "-", ".tmp-x", "sha256:", "sha256-",
);
const hostileName = fc.oneof(
  { weight: 4, arbitrary: fc.array(hostilePiece, { maxLength: 8 }).map((p) => p.join("")) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
);
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const hostileDigest = fc.oneof(
  hex64.map((h) => `sha256:${h}`),
  hex64.map((h) => `sha256-${h.toUpperCase()}`),
  fc.tuple(hex64, hostilePiece).map(([h, p]) => `sha256:${h}${p}`),
  fc.tuple(hostilePiece, hex64).map(([p, h]) => `${p}sha256:${h}`),
  hostileName,
);

/** Every file below `dir`, as paths relative to it. */
async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p));
    }
  };
  await walk(dir);
  return out.sort();
}

describe("daemon API on hostile names and digests", () => {
  let root = "";
  let modelsDir = "";
  let store: Store;
  let scheduler: Scheduler;
  let app: Hono;
  let seedDigest = "";
  let seedGGUF: Buffer = Buffer.alloc(0);
  let outsideBefore: string[] = [];

  const request = (path: string, init?: RequestInit): Promise<Response> => Promise.resolve(app.request(`http://127.0.0.1${path}`, init));
  const json = (method: string, path: string, body: unknown): Promise<Response> =>
    request(path, { method, body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });

  /** The store holds only valid blobs and manifests, and nothing outside it changed. */
  async function assertContained(): Promise<void> {
    const all = await filesBelow(root);
    const outside = all.filter((p) => !p.startsWith(`models${sep}`));
    assert.deepEqual(outside, outsideBefore, "files appeared outside the models directory");
    for (const p of all.filter((q) => q.startsWith(`models${sep}`))) {
      const parts = relative("models", p).split(sep);
      if (parts[0] === "blobs") {
        assert.equal(parts.length, 2, p);
        assert.match(parts[1]!, /^sha256-[0-9a-f]{64}$/, `stray file ${p}`);
      } else {
        assert.equal(parts[0], "manifests", p);
        assert.equal(parts.length, 5, `manifest at the wrong depth: ${p}`);
        const [, host, ns, model, tag] = parts as [string, string, string, string, string];
        assert.ok(ModelName.fromParts(host, ns, model, tag).isValid(), `manifest with an invalid name: ${p}`);
      }
    }
  }

  async function assertAnswered(res: Response, what: string, allow500 = false): Promise<void> {
    const text = await res.text();
    if (!allow500) assert.notEqual(res.status, 500, `${what}: 500 ${text.slice(0, 300)}`);
    assert.ok(res.status < 600 && res.status >= 200, `${what}: status ${res.status}`);
    // HEAD answers carry no body.
    if (res.status >= 400 && text !== "404 page not found" && text !== "") {
      const body = JSON.parse(text) as { error?: unknown };
      assert.equal(typeof body.error, "string", `${what}: error body ${text.slice(0, 200)}`);
    }
  }

  /** (Re)creates the model "seed" from a real GGUF; the delete cases may have removed it. */
  async function ensureSeed(): Promise<void> {
    if (await store.find(ModelName.parse("seed"))) return;
    const up = await request(`/api/blobs/${seedDigest}`, { method: "POST", body: seedGGUF });
    assert.ok(up.status === 201 || up.status === 200, `seed upload: ${up.status}`);
    const created = await json("POST", "/api/create", { model: "seed", files: { "model.gguf": seedDigest }, stream: false });
    assert.equal(created.status, 200, await created.text());
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "corral-fuzz-api-"));
    modelsDir = join(root, "models");
    // Neighbours a traversal would reach.
    await mkdir(join(root, "outside", "manifests"), { recursive: true });
    await writeFile(join(root, "outside", "secret"), "secret");
    store = new Store(modelsDir);
    await store.init();
    scheduler = new Scheduler({ numParallel: 1, maxLoaded: 1, defaultKeepAliveMs: 0 });
    app = createApp({ store, scheduler, signer: async () => undefined, noPrune: true, loopbackOnly: false });
    seedGGUF = await readFile(fixtures.stories260K);
    seedDigest = sha256Bytes(seedGGUF);
    await ensureSeed();
    outsideBefore = (await filesBelow(root)).filter((p) => !p.startsWith(`models${sep}`));
  });

  after(async () => {
    await scheduler?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("keeps blob and manifest paths inside the store for any name or digest", () => {
    fc.assert(
      fc.property(hostileDigest, hostileName, (d, n) => {
        try {
          const p = store.blobs.path(d);
          assert.match(relative(store.blobs.dir, p), /^sha256-[0-9a-f]{64}$/);
        } catch (e) {
          assert.ok(e instanceof InvalidDigestError, String(e));
        }
        const name = ModelName.parse(n);
        if (!name.isValid()) {
          assert.throws(() => store.manifests.path(name));
          return;
        }
        const rel = relative(store.manifests.dir, store.manifests.path(name));
        assert.equal(rel.split(sep).length, 4, rel);
        assert.ok(!rel.startsWith(".."), rel);
      }),
      runs(2000),
    );
  });

  it("answers /api/blobs with 200, 201, 400 or 404 and stores only verified blobs", async () => {
    await fc.assert(
      fc.asyncProperty(hostileDigest, fc.boolean(), fc.constantFrom("GET", "HEAD", "POST"), fc.uint8Array({ maxLength: 64 }), async (d, encode, method, body) => {
        const segment = encode ? encodeURIComponent(d) : d.replace(/[\0\n ]/g, encodeURIComponent);
        let res: Response;
        try {
          res = await request(`/api/blobs/${segment}`, method === "POST" ? { method, body } : { method });
        } catch (e) {
          // A path the URL parser itself refuses never reaches the app.
          assert.ok(e instanceof TypeError, String(e));
          return;
        }
        await assertAnswered(res, `${method} /api/blobs/${segment}`);
        assert.ok([200, 201, 400, 404].includes(res.status), `${method} /api/blobs/${segment}: ${res.status}`);
        await assertContained();
      }),
      runs(300),
    );
  });

  it("answers show, delete and copy with a 4xx for hostile names and writes nothing outside", async () => {
    const nameValue = fc.oneof({ weight: 6, arbitrary: hostileName }, { weight: 1, arbitrary: fc.constantFrom("seed", "SEED", "library/seed:latest") }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) });
    const call = fc.oneof(
      fc.record({ kind: fc.constant("show" as const), model: nameValue, verbose: fc.boolean() }),
      fc.record({ kind: fc.constant("delete" as const), model: nameValue }),
      fc.record({ kind: fc.constant("copy" as const), source: nameValue, destination: nameValue }),
    );
    await fc.assert(
      fc.asyncProperty(call, async (c) => {
        let res: Response;
        if (c.kind === "show") res = await json("POST", "/api/show", { model: c.model, verbose: c.verbose });
        else if (c.kind === "delete") res = await json("DELETE", "/api/delete", { model: c.model });
        else res = await json("POST", "/api/copy", { source: c.source, destination: c.destination });
        await assertAnswered(res, JSON.stringify(c));
        await assertContained();
      }),
      runs(300),
    );
  });

  it("answers /api/create with hostile names, file maps and bases without a 500 or a stray file", async () => {
    const fileMap = fc.dictionary(
      fc.oneof(hostileName, fc.constantFrom("model.gguf", "../model.gguf", "/abs/model.gguf", "a/../b.gguf", "a\\b.gguf", "x\0.gguf")),
      fc.oneof(hostileDigest, fc.constant("SEED")),
      { maxKeys: 3 },
    );
    const body = fc.record(
      {
        model: fc.oneof(hostileName, fc.constantFrom("fuzz-target", "library/fuzz:x")),
        from: fc.oneof(hostileName, fc.constantFrom("seed", "SEED:latest")),
        files: fileMap,
        adapters: fileMap,
        template: fc.constantFrom("{{ .Prompt }}", "{{ .Bogus", "{{ template \"x\" }}"),
        system: fc.string({ maxLength: 20 }),
        quantize: fc.constantFrom("q4_0", "bogus", "../../x"),
        parameters: fc.dictionary(fc.constantFrom("temperature", "stop", "num_ctx", "bogus", "__proto__"), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
      },
      { requiredKeys: ["model"] },
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        await ensureSeed();
        const withSeed = (m: Record<string, string> | undefined): Record<string, string> | undefined =>
          m && Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v === "SEED" ? seedDigest : v]));
        const req = { ...b, files: withSeed(b.files), adapters: withSeed(b.adapters), stream: false };
        const res = await json("POST", "/api/create", req);
        await assertAnswered(res, `create ${JSON.stringify(req).slice(0, 300)}`);
        await assertContained();
        assert.ok(await store.blobs.has(seedDigest), "the seed model's blob survived");
      }),
      runs(150),
    );
  });

  it("answers /api/pull for hostile names with 400 and never writes outside the store", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostileName, fc.jsonValue({ maxDepth: 1 })), fc.boolean(), async (model, stream) => {
        const name = typeof model === "string" ? ModelName.parse(model) : undefined;
        // Valid names other than those of the unreachable registry would go to the network.
        fc.pre(!name?.isValid() || name.host === UNREACHABLE);
        const res = await json("POST", "/api/pull", { model, stream, insecure: true });
        if (name?.isValid()) await assertAnswered(res, `pull ${JSON.stringify(model)}`, true);
        else {
          assert.equal(res.status, 400, `pull ${JSON.stringify(model)}`);
          await assertAnswered(res, `pull ${JSON.stringify(model)}`);
        }
        await assertContained();
      }),
      runs(120),
    );
  });
});
