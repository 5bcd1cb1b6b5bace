import { join } from "node:path";
import type { Config } from "../config.ts";
import type { BlobStore } from "./blob-store.ts";
import { FilesystemBlobStore } from "./filesystem.ts";
import { S3BlobStore } from "./s3.ts";

/** S3 when S3_BUCKET is set, otherwise files under the data directory. */
export async function openBlobStore(cfg: Config): Promise<BlobStore> {
  if (cfg.s3) return new S3BlobStore(cfg.s3).init();
  return new FilesystemBlobStore(join(cfg.dataDir, "storage")).init();
}
