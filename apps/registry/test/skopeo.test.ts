// A third-party OCI client against the registry: skopeo copies an OCI-manifest artifact with
// Ollama layer types in and back out, byte for byte (docs/protocol.md, "OCI distribution extras").

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType, encodeConfig } from "@corral/shared/manifest";
import { openPGlite } from "../src/db/open.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { directAdmin } from "../src/services/admin.ts";
import { testConfig } from "./support/fixtures.ts";
import { aptInstall } from "../../../test/helpers/apt.ts";

// The registry runs in this process, so skopeo must run without blocking the event loop.
const run = promisify(execFile);

function ensureSkopeo(): string | undefined {
  if (spawnSync("skopeo", ["--version"]).status === 0) return undefined;
  if (!aptInstall(["--no-install-recommends", "skopeo"]) || spawnSync("skopeo", ["--version"]).status !== 0) return "skopeo is not installed and apt-get could not install it";
  return undefined;
}
const skip = ensureSkopeo();

/** An OCI image layout holding one OCI manifest whose layers use Ollama media types. */
function writeLayout(dir: string): { manifestDigest: string; blobs: Map<string, Buffer> } {
  const blobs = new Map<string, Buffer>();
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  const put = (b: Buffer): { digest: string; size: number } => {
    const digest = sha256Bytes(b);
    blobs.set(digest, b);
    writeFileSync(join(dir, "blobs", "sha256", digest.slice(7)), b);
    return { digest, size: b.length };
  };
  const config = put(encodeConfig({ model_format: "gguf", model_family: "llama", model_families: ["llama"], model_type: "1M", file_type: "F16", architecture: "amd64", os: "linux" }));
  const model = put(randomBytes(1_500_000));
  const template = put(Buffer.from("{{ .Prompt }}"));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.config, ...config },
      layers: [
        { mediaType: MediaType.model, ...model },
        { mediaType: MediaType.template, ...template },
      ],
    }),
  );
  const m = put(manifest);
  blobs.delete(m.digest);
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, ...m, annotations: { "org.opencontainers.image.ref.name": "latest" } }] }),
  );
  return { manifestDigest: m.digest, blobs };
}

let server: RunningServer;
let cleanup: () => void;
let work: string;

before(async () => {
  if (skip) return;
  const t = testConfig();
  cleanup = t.cleanup;
  server = await startServer(t.config, { db: await openPGlite(undefined), log: () => {} });
  await directAdmin(server.registry).addUser("alice", []);
  work = mkdtempSync(join(tmpdir(), "corral-skopeo-"));
});
after(async () => {
  await server?.close();
  cleanup?.();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("skopeo copies an OCI artifact into the registry and back out unchanged", { skip: skip ?? false }, async () => {
  const src = join(work, "src");
  const { manifestDigest, blobs } = writeLayout(src);
  const host = new URL(server.url).host;
  const { token } = await directAdmin(server.registry).token("alice", ["repository:alice/artifact:pull,push"], host);
  // A private cache keeps skopeo's blob-info cache from other runs out of the way.
  const env = { ...process.env, XDG_CACHE_HOME: join(work, "cache"), HOME: work };
  const common = ["--insecure-policy", "copy", "-q", "--retry-times", "0"];
  await run("skopeo", [...common, "--dest-tls-verify=false", "--dest-registry-token", token, `oci:${src}:latest`, `docker://${host}/alice/artifact:latest`], { env });

  const res = await fetch(`${server.url}/v2/alice/artifact/manifests/latest`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), MediaType.ociManifest);
  assert.equal(res.headers.get("docker-content-digest"), manifestDigest, "the manifest is stored byte for byte");

  const out = join(work, "out");
  await run("skopeo", [...common, "--src-tls-verify=false", "--src-registry-token", token, `docker://${host}/alice/artifact:latest`, `oci:${out}:latest`], { env });
  const index = JSON.parse(readFileSync(join(out, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  assert.equal(index.manifests[0]!.digest, manifestDigest);
  for (const [digest, bytes] of blobs) {
    assert.ok(readFileSync(join(out, "blobs", "sha256", digest.slice(7))).equals(bytes), `blob ${digest} came back unchanged`);
  }
});
