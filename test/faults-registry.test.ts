// The registry under faults, with real processes: a registry on PostgreSQL + S3 (s3rver) and a
// daemon pushing a 48 MB model in 4 MB chunks.
// - S3 dies mid-upload: the push fails with a clear error; once S3 is back a new push succeeds, and
//   no blob row names bytes S3 does not have.
// - PostgreSQL restarts under a running registry: requests during the outage get a 503 OCI error,
//   the process stays up, and it serves again without a restart of its own.
// - The registry is SIGKILLed mid-upload: after a restart the daemon's next push completes, another
//   daemon pulls the model intact, and no manifest names a missing blob.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client, HeadObjectCommand } from "@aws-sdk/client-s3";
import { sha256File } from "@corral/shared/digest";
import { startDaemon, runCLI, type Daemon } from "./helpers/daemon.ts";
import { startPostgres, ensurePostgres, type Postgres } from "./helpers/postgres.ts";
import { registryCLI, type RegistryProcess } from "./helpers/registry.ts";
import { freePort } from "./helpers/ports.ts";
import { exited, postgresControl, startRegistryAt, startRestartableS3, waitFor, writeLargeGGUF, type RestartableS3 } from "./helpers/faults.ts";

const pgAvailable = !("skip" in ensurePostgres());
const skip = !pgAvailable && "PostgreSQL cannot be installed here";

let pg: Postgres;
let dbURL: string;
let s3: RestartableS3;
let registry: RegistryProcess;
let registryEnv: NodeJS.ProcessEnv & { REGISTRY_ADDR: string; REGISTRY_DATA: string };
let daemon: Daemon;
let work: string;

const CHUNKS = { CORRAL_TRANSFER_PART_MIN: String(4 << 20) };

before(async () => {
  if (!pgAvailable) return;
  pg = await startPostgres();
  dbURL = await pg.createDatabase("registry_faults");
  s3 = await startRestartableS3("corral-faults");
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), "corral-registry-faults-"));
  registryEnv = { DATABASE_URL: dbURL, REGISTRY_DATA: dataDir, REGISTRY_ADDR: `127.0.0.1:${port}`, ...s3.env };
  registry = await startRegistryAt(registryEnv);
  daemon = await startDaemon({ env: CHUNKS });
  const key = (await readFile(join(daemon.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
  const add = await registryCLI(registry, ["user", "add", "alice", "--key", key]);
  assert.equal(add.code, 0, add.stderr);
  work = await mkdtemp(join(tmpdir(), "corral-faults-"));
  for (const [name, seed] of [["big1", 1], ["big2", 2]] as const) {
    await writeLargeGGUF(join(work, `${name}.gguf`), 48 << 20, seed);
    await writeFile(join(work, `Modelfile.${name}`), `FROM ./${name}.gguf\n`);
    const c = await runCLI(daemon, ["create", `${registry.host}/alice/${name}`, "-f", join(work, `Modelfile.${name}`)]);
    assert.equal(c.code, 0, c.stderr);
  }
});

after(async () => {
  await daemon?.stop();
  await registry?.stop();
  await s3?.stop();
  await pg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
  if (registryEnv) await rm(registryEnv.REGISTRY_DATA, { recursive: true, force: true });
});

async function sql<T>(query: string): Promise<T[]> {
  const pgLib = (await import("pg")).default;
  const c = new pgLib.Client({ connectionString: dbURL });
  await c.connect();
  try {
    return (await c.query(query)).rows as T[];
  } finally {
    await c.end();
  }
}

/** Every blob row has its bytes in S3, every manifest's blobs have rows, and fsck agrees. */
async function assertConsistent(): Promise<void> {
  const client = new S3Client({ region: "us-east-1", endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  try {
    for (const row of await sql<{ digest: string; size: string }>("SELECT digest, size FROM blobs")) {
      const head = await client.send(new HeadObjectCommand({ Bucket: "corral-faults", Key: `blobs/sha256/${row.digest.slice(7)}` })).catch(() => undefined);
      assert.ok(head, `the database names ${row.digest}, which S3 does not have`);
      assert.equal(head.ContentLength, Number(row.size), `size of ${row.digest}`);
    }
  } finally {
    client.destroy();
  }
  const dangling = await sql("SELECT mb.blob_digest FROM manifest_blobs mb LEFT JOIN blobs b ON b.digest = mb.blob_digest WHERE b.digest IS NULL");
  assert.deepEqual(dangling, [], "no manifest names a blob without a row");
  const fsck = await registryCLI(registry, ["fsck", "--quick"]);
  assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  assert.doesNotMatch(fsck.stdout, /missing-blob|corrupt-blob|broken-manifest/);
}

const uploadedBytes = async (): Promise<number> => Number((await sql<{ n: string }>("SELECT coalesce(max(size), 0) AS n FROM uploads"))[0]?.n ?? 0);

test("S3 stopped mid-upload: the push fails clearly, a push after S3 is back succeeds, nothing dangles", { skip }, async () => {
  const name = `${registry.host}/alice/big1`;
  const pushing = runCLI(daemon, ["push", name, "--insecure"]);
  await waitFor("the first chunk to reach S3", async () => (await uploadedBytes()) > 0, { during: { "the push": pushing, "the registry": exited(registry.process) } });
  await s3.kill();
  try {
    const failed = await pushing;
    assert.equal(failed.code, 1, "the push fails");
    const err = failed.stderr.split("\n").find((l) => l.startsWith("Error: ")) ?? failed.stderr;
    assert.match(err, /blob storage is unavailable/, `${err}\n${registry.logs().slice(-3000)}`);
    assert.equal(registry.process.exitCode, null, "the registry is still running");
    const tags = await fetch(`${registry.url}/v2/alice/big1/tags/list`);
    assert.notEqual(tags.status, 200, "no manifest was stored");
  } finally {
    await s3.start();
  }
  const again = await runCLI(daemon, ["push", name, "--insecure"]);
  assert.equal(again.code, 0, again.stderr + registry.logs().slice(-4000));
  await assertConsistent();
});

test("PostgreSQL restarted under a running registry: 503 during the outage, served again after", { skip }, async () => {
  const ctl = await postgresControl(dbURL, pg.port);
  const manifestURL = `${registry.url}/v2/alice/big1/manifests/latest`;
  assert.equal((await fetch(manifestURL)).status, 401, "before: a private model asks for a token");
  ctl.stop();
  try {
    for (const [method, url] of [["GET", manifestURL], ["GET", `${registry.url}/v2/token?scope=repository:alice/big1:pull&service=x`], ["POST", `${registry.url}/v2/alice/big1/blobs/uploads/`]] as const) {
      const res = await fetch(url, { method });
      assert.equal(res.status, 503, `${method} ${url} during the outage`);
      const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
      assert.equal(body.errors[0]!.code, "UNAVAILABLE");
      assert.match(body.errors[0]!.message, /database is unavailable/);
    }
    const pull = await runCLI(daemon, ["pull", `${registry.host}/alice/big1`, "--insecure"]);
    assert.equal(pull.code, 1);
    assert.match(pull.stderr, /database is unavailable/);
    assert.equal(registry.process.exitCode, null, "the registry did not crash");
  } finally {
    ctl.start();
  }
  // The pool opens new connections: no restart of the registry.
  await waitFor("the registry to answer again", async () => (await fetch(manifestURL)).status === 401, { everyMs: 200, during: { "the registry": exited(registry.process) } });
  const push = await runCLI(daemon, ["push", `${registry.host}/alice/big1`, "--insecure"]);
  assert.equal(push.code, 0, push.stderr);
  assert.equal(registry.process.exitCode, null);
});

test("the registry SIGKILLed mid-upload: after a restart the next push completes and pulls whole", { skip }, async () => {
  const name = `${registry.host}/alice/big2`;
  const pushing = runCLI(daemon, ["push", name, "--insecure"]);
  await waitFor("the upload to be under way", async () => (await uploadedBytes()) > 0, { during: { "the push": pushing, "the registry": exited(registry.process) } });
  registry.process.kill("SIGKILL");
  await new Promise((r) => registry.process.once("exit", r));
  registry = await startRegistryAt(registryEnv);
  const first = await pushing;
  // The interrupted push either resumed against the restarted registry or failed; either way:
  if (first.code !== 0) assert.match(first.stderr, /Error: /);
  const next = await runCLI(daemon, ["push", name, "--insecure"]);
  assert.equal(next.code, 0, next.stderr);
  await assertConsistent();

  const b = await startDaemon();
  try {
    const key = (await readFile(join(b.home, ".corral", "id_ed25519.pub"), "utf8")).trim();
    assert.equal((await registryCLI(registry, ["key", "add", "alice", key])).code, 0);
    const pull = await runCLI(b, ["pull", name, "--insecure"]);
    assert.equal(pull.code, 0, pull.stderr);
    const want = (await sha256File(join(work, "big2.gguf"))).digest;
    assert.equal((await sha256File(join(b.modelsDir, "blobs", `sha256-${want.slice(7)}`))).digest, want);
  } finally {
    await b.stop();
  }
});
