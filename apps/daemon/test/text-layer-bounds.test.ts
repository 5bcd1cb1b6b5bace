// Text layers of a stored model come from registries as they are. Reading one for /api/show or a
// create FROM it is bounded: a params or messages layer nested far deeper than real ones is refused
// before JSON.parse sees it, and a text layer larger than any real template or licence is refused
// before it is read into memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModelName } from "@corral/shared/name";
import { MediaType, encodeConfig, encodeManifest, type Manifest } from "@corral/shared/manifest";
import { MAX_TEXT_LAYER_BYTES, Store } from "../src/store/store.ts";
import { readModel } from "../src/store/model-info.ts";

async function modelWith(store: Store, mediaType: string, text: string): Promise<Manifest> {
  const layer = await store.blobs.writeBytes(text);
  const config = await store.blobs.writeBytes(encodeConfig({ model_format: "gguf", model_family: "llama", model_families: ["llama"], model_type: "260K", file_type: "F32", architecture: "amd64", os: "linux" }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifestV2,
    config: { mediaType: MediaType.config, digest: config.digest, size: config.size },
    layers: [{ mediaType, digest: layer.digest, size: layer.size }],
  };
  await store.putManifest(ModelName.parse("hostile"), encodeManifest(manifest), manifest);
  return manifest;
}

async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "corral-text-layers-"));
  try {
    const store = new Store(dir);
    await store.init();
    await fn(store);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const [mediaType, what] of [
  [MediaType.params, "parameters layer"],
  [MediaType.messages, "messages layer"],
] as const) {
  test(`a ${what} nested 100,000 deep is refused before it is parsed`, () =>
    withStore(async (store) => {
      await modelWith(store, mediaType, "[".repeat(100_000) + "]".repeat(100_000));
      const parse = JSON.parse;
      let parsed = 0;
      JSON.parse = ((text: string, reviver?: Parameters<typeof parse>[1]) => {
        if (text.length >= 100_000) parsed++;
        return parse(text, reviver);
      }) as typeof JSON.parse;
      try {
        await assert.rejects(readModel(store, (await store.manifests.read(ModelName.parse("hostile")))!), new RegExp(`${what} is nested more than 8 levels deep`));
      } finally {
        JSON.parse = parse;
      }
      assert.equal(parsed, 0, "JSON.parse never saw the layer");
    }));
}

test("a text layer larger than the limit is refused without being read", () =>
  withStore(async (store) => {
    const manifest = await modelWith(store, MediaType.license, "MIT");
    // Grow the stored file past the limit (sparse): only its size is looked at.
    await truncate(store.blobs.path(manifest.layers[0]!.digest), MAX_TEXT_LAYER_BYTES + 1);
    await assert.rejects(readModel(store, (await store.manifests.read(ModelName.parse("hostile")))!), /text layers are limited to 8388608 bytes/);
  }));
