// A small Ollama-style model (random "weights", a template, params and a config blob) and the
// registry set-ups the suites share.

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256Bytes } from "@corral/shared/digest";
import { MediaType, encodeConfig, type Manifest } from "@corral/shared/manifest";
import { loadConfig, type Config } from "../../src/config.ts";

export interface TestModel {
  manifest: Manifest;
  blobs: Map<string, Buffer>;
}

export function makeModel(modelBytes = 300_000, from?: string): TestModel {
  const blobs = new Map<string, Buffer>();
  const add = (b: Buffer): string => {
    const d = sha256Bytes(b);
    blobs.set(d, b);
    return d;
  };
  const model = randomBytes(modelBytes);
  const template = Buffer.from(`{{ .Prompt }} ${randomBytes(4).toString("hex")}`);
  const params = Buffer.from('{"temperature":0.7}');
  const config = encodeConfig({ model_format: "gguf", model_family: "llama", model_families: ["llama"], model_type: "260K", file_type: "F32", architecture: "amd64", os: "linux" });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifestV2,
    config: { mediaType: MediaType.config, digest: add(config), size: config.length },
    layers: [
      { mediaType: MediaType.model, digest: add(model), size: model.length, ...(from ? { from } : {}) },
      { mediaType: MediaType.template, digest: add(template), size: template.length },
      { mediaType: MediaType.params, digest: add(params), size: params.length },
    ],
  };
  return { manifest, blobs };
}

/** A configuration for tests: a temporary data directory and a free port, plus overrides. */
export function testConfig(env: Record<string, string> = {}): { config: Config; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "corral-registry-"));
  const config = loadConfig({ REGISTRY_ADDR: "127.0.0.1:0", REGISTRY_DATA: dir, ...env });
  return { config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
