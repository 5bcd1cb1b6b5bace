// The registry driven over HTTP exactly as Ollama's client drives it (docs/protocol.md): signed token exchange
// with a real OpenSSH ed25519 key, chunked PATCH upload, final PUT with etag, manifest PUT, then a
// pull through Location + Range. Once on PostgreSQL + S3, once on PGlite + the filesystem.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, formatPrivateKey, formatPublicKeyLine, parsePrivateKey } from "@corral/shared/signing";
import { sha256Bytes } from "@corral/shared/digest";
import { startServer, type RunningServer } from "../src/server.ts";
import { directAdmin } from "../src/services/admin.ts";
import { OllamaClientError, OllamaRegistryClient } from "./support/ollama-client.ts";
import { makeModel, testConfig } from "./support/fixtures.ts";
import { startPostgres, type Postgres } from "../../../test/helpers/postgres.ts";
import { startS3, type S3Server } from "../../../test/helpers/s3.ts";

function flow(label: string, setup: () => Promise<{ env: Record<string, string>; stop(): Promise<void> }>): void {
  describe(`Ollama client flow: ${label}`, () => {
    let server: RunningServer;
    let services: { stop(): Promise<void> };
    let cleanup: () => void;
    // Keys go through the OpenSSH file format, as the daemon would read ~/.ollama/id_ed25519.
    const alice = parsePrivateKey(formatPrivateKey(generateKeyPair()));
    const bob = parsePrivateKey(formatPrivateKey(generateKeyPair()));
    const stranger = generateKeyPair();
    const model = makeModel(350_000);
    const small = { minPartSize: 64 * 1024, maxPartSize: 64 * 1024 };

    before(async () => {
      const s = await setup();
      services = s;
      const t = testConfig(s.env);
      cleanup = t.cleanup;
      server = await startServer(t.config, { log: () => {} });
      const admin = directAdmin(server.registry);
      await admin.addUser("alice", [formatPublicKeyLine(alice.publicKey)]);
      await admin.addUser("bob", [formatPublicKeyLine(bob.publicKey)]);
    });
    after(async () => {
      await server?.close();
      await services?.stop();
      cleanup?.();
    });

    test("push in chunks, then pull through Location and Range parts", async () => {
      const client = new OllamaRegistryClient({ base: server.url, key: alice, ...small });
      await client.push("alice/mario", "latest", model.manifest, model.blobs);
      const patches = client.trace.filter((t) => t.startsWith("PATCH")).length;
      assert.ok(patches >= 6, `the model layer went up in several PATCHes (${patches})`);
      // The HEAD asks for pull, the upload for push: two token requests, each signed over the exact URL.
      assert.deepEqual(
        client.tokenRequests.map((r) => new URL(r.url).searchParams.get("scope")),
        ["repository:alice/mario:pull", "repository:alice/mario:push,pull"],
      );
      assert.match(client.tokenRequests[1]!.url, /\/v2\/token\?nonce=[A-Za-z0-9_-]{22}&scope=repository%3Aalice%2Fmario%3Apush%2Cpull&service=127\.0\.0\.1%3A\d+&ts=\d+$/);

      const pulled = await new OllamaRegistryClient({ base: server.url, key: alice, ...small }).pull("alice/mario", "latest");
      assert.deepEqual(JSON.parse(pulled.manifestBytes.toString()), JSON.parse(JSON.stringify(model.manifest)));
      for (const [digest, bytes] of model.blobs) assert.ok(pulled.blobs.get(digest)?.equals(bytes), `blob ${digest} round-trips`);
    });

    test("the manifest is served byte for byte with its digest", async () => {
      const client = new OllamaRegistryClient({ base: server.url, key: alice });
      const res = await client.request("GET", `${server.url}/v2/alice/mario/manifests/latest`, { headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" } });
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(res.headers.get("docker-content-digest"), sha256Bytes(bytes));
      assert.equal(res.headers.get("content-type"), "application/vnd.docker.distribution.manifest.v2+json");
      assert.deepEqual(bytes, Buffer.from(JSON.stringify(model.manifest)));
    });

    test("a second push of the same blobs uploads nothing; a mount from another repository is a 201", async () => {
      const client = new OllamaRegistryClient({ base: server.url, key: alice });
      await client.push("alice/mario", "v2", model.manifest, model.blobs);
      assert.equal(client.trace.filter((t) => t.startsWith("PATCH")).length, 0);
      const withFrom = { ...model.manifest, layers: model.manifest.layers.map((l) => ({ ...l, from: "alice/mario" })) };
      const c2 = new OllamaRegistryClient({ base: server.url, key: alice });
      await c2.push("alice/luigi", "latest", withFrom, model.blobs);
      assert.equal(c2.trace.filter((t) => t.startsWith("PATCH")).length, 1, "only the config (no from) is uploaded");
    });

    test("private models: anonymous and other accounts are refused the way Ollama reports it", async () => {
      await assert.rejects(new OllamaRegistryClient({ base: server.url }).pull("alice/mario", "latest"), /unauthorized: access denied/);
      await assert.rejects(new OllamaRegistryClient({ base: server.url, key: stranger }).pull("alice/mario", "latest"), /unauthorized: access denied/);
      await assert.rejects(new OllamaRegistryClient({ base: server.url, key: bob }).push("alice/mario", "bob", model.manifest, model.blobs), /unauthorized: access denied/);
      await directAdmin(server.registry).setVisibility("alice/mario", "public");
      const pulled = await new OllamaRegistryClient({ base: server.url }).pull("alice/mario", "latest");
      assert.equal(pulled.blobs.size, model.blobs.size);
    });

    test("a replayed token request is refused", async () => {
      const client = new OllamaRegistryClient({ base: server.url, key: alice });
      await client.pull("alice/luigi", "latest");
      const first = client.tokenRequests[0]!;
      const replay = await fetch(first.url, { headers: { Authorization: first.authorization! } });
      assert.equal(replay.status, 401);
      const body = (await replay.json()) as { errors: Array<{ code: string; message: string }> };
      assert.equal(body.errors[0]!.code, "UNAUTHORIZED");
      assert.match(body.errors[0]!.message, /already used/);
    });

    test("a chunk that does not start where the upload stands is a 416 with the current range", async () => {
      const client = new OllamaRegistryClient({ base: server.url, key: alice });
      await assert.rejects(client.request("HEAD", `${server.url}/v2/alice/peach/blobs/${sha256Bytes("x")}`), (e: OllamaClientError) => e.status === 404);
      const start = await client.request("POST", `${server.url}/v2/alice/peach/blobs/uploads/`);
      const loc = start.headers.get("location")!;
      const res = await fetch(loc, {
        method: "PATCH",
        headers: { Authorization: `Bearer ${(client as unknown as { token: string }).token}`, "Content-Range": "10-19", "Content-Length": "10" },
        body: Buffer.alloc(10),
      });
      assert.equal(res.status, 416);
      assert.equal(res.headers.get("range"), "0-0");
    });
  });
}

let pg: Postgres | undefined;
let s3: S3Server | undefined;
flow("PostgreSQL + S3", async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3("flow")]);
  const url = await pg.createDatabase("registry_flow");
  return {
    env: { DATABASE_URL: url, ...s3.env },
    async stop() {
      await Promise.all([pg?.stop(), s3?.stop()]);
    },
  };
});

flow("PGlite + filesystem", async () => ({ env: {}, async stop() {} }));
