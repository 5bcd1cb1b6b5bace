// corral-registry: serve the registry, apply its migrations, or administer accounts, keys,
// organisations and models. Each command imports what it needs when it runs, so `--help` and the
// admin commands never load the server, and only `serve` loads the web catalog.

import { Command, Option } from "commander";
import { loadConfig } from "../config.ts";
import type { FsckFlags } from "./fsck.ts";
import type { UserInfo } from "../services/accounts.ts";
import type { AdminOps } from "../services/admin.ts";

function printAccount(a: UserInfo): void {
  console.log(`${a.name} (${a.kind})`);
  for (const k of a.keys) console.log(`  key ${k.fingerprint}  ${k.key}`);
  for (const m of a.members) console.log(`  member ${m.name}: ${m.role}`);
}

async function withAdmin<T>(fn: (ops: AdminOps) => Promise<T>, print: (v: T) => void): Promise<void> {
  const { connectAdmin } = await import("./admin-client.ts");
  const conn = await connectAdmin(loadConfig());
  try {
    print(await fn(conn.ops));
  } finally {
    await conn.close();
  }
}

const program = new Command("corral-registry")
  .description("A team's own model registry, speaking Ollama's registry protocol")
  .showHelpAfterError();

program
  .command("serve")
  .description("run the registry (REGISTRY_ADDR, REGISTRY_DATA, DATABASE_URL, S3_*, REGISTRY_URL)")
  .action(async () => {
    const [{ keepEmbeddedDatabaseOnBaselineCompiler, tuneHeapForUploads }, { keepFreedUploadMemory }, { startServer }, { onShutdownSignals }, { describeDatabase }, { startLine }] = await Promise.all([
      import("../ops/v8-flags.ts"),
      import("../ops/allocator.ts"),
      import("../server.ts"),
      import("../ops/shutdown.ts"),
      import("../ops/startup.ts"),
      import("../ops/server-info.ts"),
    ]);
    tuneHeapForUploads();
    keepFreedUploadMemory();
    const config = loadConfig();
    if (!config.databaseURL) keepEmbeddedDatabaseOnBaselineCompiler();
    const server = await startServer(config);
    // For the person who started it, next to the JSON logs on stderr: where it is, where its data
    // and admin token are.
    console.log(startLine(config, server.registry.urls.primary, config.databaseURL ? `PostgreSQL at ${describeDatabase(config.databaseURL)}` : undefined));
    onShutdownSignals(async (signal) => {
      server.logger.info(`received ${signal}`);
      await server.close();
    });
  });

program
  .command("migrate")
  .description("apply the database migrations and exit (DATABASE_URL, else the embedded database in REGISTRY_DATA)")
  .action(async () => {
    const { describeDatabase, openDatabase } = await import("../ops/startup.ts");
    const config = loadConfig();
    const db = await openDatabase(config);
    await db.close();
    console.log(`migrations applied (${config.databaseURL ? `PostgreSQL at ${describeDatabase(config.databaseURL)}` : `embedded database in ${config.dataDir}`})`);
  });

const user = program.command("user").description("user accounts");
user
  .command("add <name>")
  .description("create a user (its name is also its namespace)")
  .option("--key <line...>", 'an "ssh-ed25519 AAAA…" public key line')
  .action((name: string, o: { key?: string[] }) => withAdmin((ops) => ops.addUser(name, o.key ?? []), printAccount));
user
  .command("list")
  .option("--json", "print JSON")
  .action((o: { json?: boolean }) =>
    withAdmin(
      (ops) => ops.listUsers(),
      (all) => (o.json ? console.log(JSON.stringify(all, null, 2)) : all.forEach(printAccount)),
    ),
  );

const key = program.command("key").description("a user's ed25519 public keys");
key.command("add <user> <line>").action((u: string, line: string) => withAdmin((ops) => ops.addKey(u, line), printAccount));
key
  .command("remove <user> <key>")
  .description("remove a key given as its line or its SHA256: fingerprint")
  .action((u: string, k: string) => withAdmin((ops) => ops.removeKey(u, k), printAccount));

const org = program.command("org").description("organisations");
org
  .command("create <org>")
  .requiredOption("--owner <user>", "the first owner")
  .action((name: string, o: { owner: string }) => withAdmin((ops) => ops.createOrg(name, o.owner), printAccount));
org
  .command("add-member <org> <user>")
  .addOption(new Option("--role <role>", "the member's role").choices(["reader", "writer", "owner"]).makeOptionMandatory())
  .action((name: string, u: string, o: { role: string }) => withAdmin((ops) => ops.addMember(name, u, o.role), printAccount));

program
  .command("grant <namespace> <user>")
  .description("give a user a role on a namespace (an organisation or another user's)")
  .addOption(new Option("--role <role>", "the role").choices(["reader", "writer", "owner"]).makeOptionMandatory())
  .action((ns: string, u: string, o: { role: string }) => withAdmin((ops) => ops.grant(ns, u, o.role), printAccount));

program
  .command("visibility <repository> <visibility>")
  .description("make NAMESPACE/MODEL public or private")
  .action((repo: string, v: string) => withAdmin((ops) => ops.setVisibility(repo, v), (r) => console.log(`${r.repository} is ${r.visibility}`)));

program
  .command("gc")
  .description("delete blobs no manifest references (after REGISTRY_GC_GRACE seconds) and stale uploads")
  .option("--dry-run", "report without deleting")
  .action((o: { dryRun?: boolean }) => withAdmin((ops) => ops.gc(o.dryRun ?? false), (r) => console.log(JSON.stringify(r))));

program
  .command("token <user>")
  .description("print a bearer token for a user, for clients that cannot sign requests (skopeo --registry-token)")
  .option("--scope <scope...>", "repository:<ns>/<model>:<actions>")
  .option("--service <host>", "the token's audience (default: the host of REGISTRY_URL, or of the address the registry listens on)")
  .action((u: string, o: { scope?: string[]; service?: string }) =>
    withAdmin(
      // Without --service the registry decides: the running server knows the port it listens on.
      (ops) => ops.token(u, o.scope ?? [], o.service),
      (t) => console.log(t.token),
    ),
  );

program
  .command("mirror")
  .description("mirrored namespaces (REGISTRY_MIRRORS)")
  .command("warm <name>")
  .description("fetch NAMESPACE/MODEL[:TAG] of a mirrored namespace and all its blobs from the upstream now")
  .action(async (name: string) => (await import("./mirror-warm.ts")).warmCommand(loadConfig(), name));

program
  .command("fsck")
  .description("check that the database and the blob store agree (missing, damaged and unknown blobs); --repair fixes it")
  .option("--repair", "delete manifests naming missing or damaged blobs, damaged bytes, unknown blobs and stray uploads")
  .option("--quick", "compare sizes instead of hashing every blob")
  .option("--json", "print the report as JSON")
  .action(async (o: FsckFlags) => (await import("./fsck.ts")).fsckCommand(loadConfig(), o));

program.parseAsync(process.argv).catch((e: Error) => {
  console.error(`Error: ${e.message}`);
  process.exit(1);
});
