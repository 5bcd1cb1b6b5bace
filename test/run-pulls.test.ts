// `corral run` of a model that is not here pulls it first, as Ollama's run does (with --insecure
// for a plain-HTTP registry), and then runs it; a model the registry does not have either ends with
// the pull's error. The registry is a small node:http server holding stories260K.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { startDaemon, runCLI } from "./helpers/daemon.ts";
import { fixtures } from "./fixtures.ts";
import { MANIFEST_TYPE, blobOf, sendRange, site } from "./helpers/fake-registry.ts";

test("run of a missing model pulls it, then answers; a model the registry lacks fails with the pull's error", async () => {
  const config = blobOf(Buffer.from(JSON.stringify({ model_format: "gguf", model_family: "llama", model_families: ["llama"], model_type: "260K", file_type: "F32", architecture: "amd64", os: "linux" })));
  const layer = blobOf(await readFile(fixtures.stories260K));
  // A short answer: without num_predict the tiny model would write until the client left.
  const params = blobOf(Buffer.from('{"num_predict":8,"temperature":0}'));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: config.digest, size: config.size },
      layers: [
        { mediaType: "application/vnd.ollama.image.model", digest: layer.digest, size: layer.size },
        { mediaType: "application/vnd.ollama.image.params", digest: params.digest, size: params.size },
      ],
    }),
  );
  const r = await site((req, res, url) => {
    if (url.pathname === "/v2/") return res.writeHead(200).end();
    if (url.pathname === "/v2/team/story/manifests/latest") return res.writeHead(200, { "Content-Type": MANIFEST_TYPE, "Content-Length": manifest.length }).end(manifest);
    if (url.pathname === `/v2/team/story/blobs/${config.digest}`) return sendRange(req, res, config);
    if (url.pathname === `/v2/team/story/blobs/${layer.digest}`) return sendRange(req, res, layer);
    if (url.pathname === `/v2/team/story/blobs/${params.digest}`) return sendRange(req, res, params);
    res.writeHead(404, { "Content-Type": "application/json" }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
  });
  const d = await startDaemon();
  try {
    const ran = await runCLI(d, ["run", `${r.host}/team/story`, "--insecure", "Once upon a time"]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stderr, /pulling manifest/);
    assert.ok(ran.stdout.trim().length > 0, "the model answered");
    const listed = await runCLI(d, ["list"]);
    assert.match(listed.stdout, new RegExp(`${r.host}/team/story:latest`));

    const missing = await runCLI(d, ["run", `${r.host}/team/nothere`, "--insecure", "hello"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Error: pull model manifest: file does not exist\n$/);
  } finally {
    await d.stop();
    await r.close();
  }
});
