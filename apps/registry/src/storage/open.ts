// Chooses and opens the blob store the configuration names.

import { join } from "node:path";
import type { Config } from "../config.ts";
import type { BlobStore } from "./blob-store.ts";

/**
 * S3 when S3_BUCKET is set, otherwise files under the data directory. Each store's module is
 * imported only when chosen: the AWS SDK alone costs a filesystem registry a fifth of a second of
 * start-up and several megabytes it would never use.
 */
export async function openBlobStore(cfg: Config): Promise<BlobStore> {
  if (cfg.s3) {
    const { S3BlobStore } = await import("./s3.ts");
    return new S3BlobStore(cfg.s3).init();
  }
  const { FilesystemBlobStore } = await import("./filesystem.ts");
  return new FilesystemBlobStore(join(cfg.dataDir, "storage")).init();
}
