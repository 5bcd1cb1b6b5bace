// Everything a request handler needs, opened once: configuration, database, blob store, secrets.

import type { Config } from "./config.ts";
import { openPGlite, openPostgres, type Database } from "./db/open.ts";
import { join } from "node:path";
import type { BlobStore } from "./storage/blob-store.ts";
import { openBlobStore } from "./storage/open.ts";
import { loadSecrets, type Secrets } from "./auth/secrets.ts";
import { UploadHashes } from "./services/uploads.ts";
import { publicURLs, type PublicURLs } from "./http/public-urls.ts";

export interface Registry {
  config: Config;
  db: Database;
  dbKind: "postgres" | "pglite";
  store: BlobStore;
  secrets: Secrets;
  hashes: UploadHashes;
  /** The URLs the registry is reached under: from the configuration here, refined by the server once it listens. */
  urls: PublicURLs;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Use this database instead of the one the configuration names (tests share one PGlite). */
  db?: { db: Database; kind: "postgres" | "pglite"; close(): Promise<void> };
  store?: BlobStore;
}

export async function openRegistry(config: Config, opts: OpenOptions = {}): Promise<Registry> {
  const database = opts.db ?? (config.databaseURL ? await openPostgres(config.databaseURL) : await openPGlite(join(config.dataDir, "db")));
  try {
    const store = opts.store ?? (await openBlobStore(config));
    const secrets = await loadSecrets(database.db);
    return {
      config,
      db: database.db,
      dbKind: database.kind,
      store,
      secrets,
      hashes: new UploadHashes(),
      urls: publicURLs(config),
      async close() {
        await store.close();
        await database.close();
      },
    };
  } catch (e) {
    await database.close().catch(() => {});
    throw e;
  }
}
