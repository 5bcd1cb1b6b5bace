// Everything a request handler needs, opened once: configuration, database, blob store, secrets,
// and everything the registry keeps in this process's memory. That memory is all here, one set per
// registry, so several registries in one process (tests) never share any of it.

import type { Config } from "./config.ts";
import { openPGlite, openPostgres, type Database } from "./db/open.ts";
import { join } from "node:path";
import type { BlobStore } from "./storage/blob-store.ts";
import { openBlobStore } from "./storage/open.ts";
import { loadSecrets, type Secrets } from "./auth/secrets.ts";
import { UploadHashes } from "./services/uploads.ts";
import { publicURLs, type PublicURLs } from "./http/public-urls.ts";
import { ReadCache } from "./services/read-cache.ts";
import { TokenBuckets } from "./auth/rate-limit.ts";
import { verifiedTokens, type VerifiedTokens } from "./auth/verified-tokens.ts";
import { MirrorRuntime } from "./mirror/runtime.ts";
import { PullCounter } from "./services/pull-counts.ts";

export interface Registry {
  config: Config;
  db: Database;
  dbKind: "postgres" | "pglite";
  store: BlobStore;
  secrets: Secrets;
  /** The URLs the registry is reached under: from the configuration here, refined by the server once it listens. */
  urls: PublicURLs;

  // What this registry remembers in memory. Each replica has its own; none of it is needed for
  // correctness across replicas, and all of it is bounded.
  /** Running sha256 of the upload sessions this process saw from their start (services/uploads.ts). */
  hashes: UploadHashes;
  /**
   * Memoised lookups of the request path, told by the services that write which tables changed;
   * kept only on the embedded database, which no other process writes (services/read-cache.ts).
   */
  reads: ReadCache;
  /** Bearer tokens that verified, until they expire; `<audience>\n<token>` → claims (auth/verified-tokens.ts). */
  verifiedTokens: VerifiedTokens;
  /** The token endpoint's rate limit: a bucket per client address and per signing key (auth/rate-limit.ts). */
  tokenBuckets: TokenBuckets;
  /** When this process last marked each blob in use, by digest (services/blobs.ts). */
  blobTouches: Map<string, number>;
  /** Mirrored namespaces: upstream clients, downloads and lookups in flight (mirror/runtime.ts). */
  mirror: MirrorRuntime;
  /** Pulls counted since the last write to `pull_counts` (services/pull-counts.ts). */
  pulls: PullCounter;

  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * Use this database instead of the one the configuration names (tests: PGlite in memory). An
   * embedded database serves one registry: its read cache hears only that registry's writes.
   */
  db?: { db: Database; kind: "postgres" | "pglite"; close(): Promise<void> };
  store?: BlobStore;
}

export async function openRegistry(config: Config, opts: OpenOptions = {}): Promise<Registry> {
  const database = opts.db ?? (config.databaseURL ? await openPostgres(config.databaseURL) : await openPGlite(join(config.dataDir, "db")));
  try {
    const store = opts.store ?? (await openBlobStore(config));
    const secrets = await loadSecrets(database.db);
    const mirror = new MirrorRuntime(config);
    const pulls = new PullCounter(database.db);
    return {
      config,
      db: database.db,
      dbKind: database.kind,
      store,
      secrets,
      urls: publicURLs(config),
      hashes: new UploadHashes(),
      reads: new ReadCache(database.kind === "pglite"),
      verifiedTokens: verifiedTokens(),
      tokenBuckets: new TokenBuckets(config.tokenRatePerMinute),
      blobTouches: new Map(),
      mirror,
      pulls,
      async close() {
        await mirror.close();
        await pulls.close().catch(() => {});
        await store.close();
        await database.close();
      },
    };
  } catch (e) {
    await database.close().catch(() => {});
    throw e;
  }
}
