// Deployment files: docker-compose.yml validates with docker-compose (Debian's, installed when
// missing) or, where it cannot be installed, against the structure the stack needs; every
// Kubernetes manifest validates against the Kubernetes schemas; and every environment variable
// the code reads is documented in infra/CONFIGURATION.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import * as apps from "kubernetes-models/apps/v1";
import * as batch from "kubernetes-models/batch/v1";
import * as core from "kubernetes-models/v1";
import * as policy from "kubernetes-models/policy/v1";
import { repoRoot } from "./helpers/daemon.ts";
import { aptInstall } from "./helpers/apt.ts";

function composeBinary(): string | undefined {
  const which = () => spawnSync("sh", ["-c", "command -v docker-compose"], { encoding: "utf8" });
  if (which().status !== 0) {
    aptInstall(["docker-compose"]);
  }
  const r = which();
  return r.status === 0 ? r.stdout.trim() : undefined;
}

test("docker-compose.yml validates", async (t) => {
  const file = join(repoRoot, "docker-compose.yml");
  const compose = parse(await readFile(file, "utf8")) as { services: Record<string, Record<string, unknown>>; volumes: Record<string, unknown> };
  for (const s of ["postgres", "minio", "minio-setup", "registry", "daemon"]) assert.ok(compose.services[s], `service ${s}`);
  for (const s of ["postgres", "minio", "registry", "daemon"]) assert.ok(compose.services[s]!["healthcheck"], `${s} has a health check`);
  const env = compose.services["registry"]!["environment"] as Record<string, string>;
  for (const k of ["DATABASE_URL", "S3_BUCKET", "S3_ENDPOINT", "S3_FORCE_PATH_STYLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "REGISTRY_URL"]) assert.ok(env[k], `registry sets ${k}`);
  const bin = composeBinary();
  if (!bin) {
    t.skip("docker-compose cannot be installed here; the structural checks above ran instead");
    return;
  }
  const ok = spawnSync(bin, ["-f", file, "config", "-q"], { encoding: "utf8", cwd: repoRoot });
  assert.equal(ok.status, 0, ok.stderr);
  // The validator is not a no-op: a wrong type is caught.
  const dir = await mkdtemp(join(tmpdir(), "compose-"));
  const broken = (await readFile(file, "utf8")).replace('      retries: 20\n', '      retries: "many"\n');
  await writeFile(join(dir, "docker-compose.yml"), broken);
  const bad = spawnSync(bin, ["-f", join(dir, "docker-compose.yml"), "config", "-q"], { encoding: "utf8", cwd: repoRoot });
  assert.notEqual(bad.status, 0);
});

const KINDS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/Deployment": apps.Deployment,
  "batch/v1/Job": batch.Job,
  "v1/Service": core.Service,
  "v1/ConfigMap": core.ConfigMap,
  "v1/Secret": core.Secret,
  "v1/Namespace": core.Namespace,
  "policy/v1/PodDisruptionBudget": policy.PodDisruptionBudget,
};

test("every Kubernetes manifest validates against its schema", async () => {
  const dir = join(repoRoot, "infra", "k8s");
  const kinds = new Set<string>();
  for (const f of (await readdir(dir)).filter((n) => n.endsWith(".yaml"))) {
    for (const doc of parseAllDocuments(await readFile(join(dir, f), "utf8"))) {
      const obj = doc.toJSON() as { apiVersion: string; kind: string; metadata: { namespace?: string } };
      const key = `${obj.apiVersion}/${obj.kind}`;
      const Model = KINDS[key];
      assert.ok(Model, `${f}: no schema for ${key}`);
      new Model(obj as never).validate();
      kinds.add(obj.kind);
    }
  }
  for (const k of ["Deployment", "Service", "Job", "Secret", "ConfigMap"]) assert.ok(kinds.has(k), `a ${k} is defined`);
  const deployment = parse(await readFile(join(dir, "registry-deployment.yaml"), "utf8")) as { spec: { replicas: number } };
  assert.ok(deployment.spec.replicas >= 2, "the registry runs several replicas");
  assert.throws(() => new apps.Deployment({ ...deployment, spec: { ...deployment.spec, replicas: "three" } } as never).validate(), /replicas/);
});

test("every environment variable the code reads is in the configuration reference", async () => {
  const reference = await readFile(join(repoRoot, "infra", "CONFIGURATION.md"), "utf8");
  const found = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\.(ts|mjs)$/.test(e.name)) {
        const text = await readFile(p, "utf8");
        for (const m of text.matchAll(/"((?:CORRAL|OLLAMA|REGISTRY|S3|AWS|DATABASE)_[A-Z0-9_]+)"|process\.env\.((?:CORRAL|OLLAMA|REGISTRY|S3|AWS|DATABASE)_[A-Z0-9_]+)/g)) found.add((m[1] ?? m[2])!);
      }
    }
  };
  await walk(join(repoRoot, "apps", "daemon", "src"));
  await walk(join(repoRoot, "apps", "registry", "src"));
  await walk(join(repoRoot, "packages", "shared", "src"));
  assert.ok(found.size > 5);
  const missing = [...found].filter((v) => !reference.includes(`\`${v}\``)).sort();
  assert.deepEqual(missing, [], `undocumented: ${missing.join(", ")}`);
});
