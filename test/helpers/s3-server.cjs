// An S3-compatible server for tests: s3rver 3.7.1 with the one gap our S3 driver meets filled in
// (AbortMultipartUpload, which s3rver answers with 405). Prints "s3 listening on <port>" when ready.
//   node --openssl-legacy-provider test/helpers/s3-server.cjs --dir DIR --port N --bucket NAME [--address A]
// (the address defaults to 127.0.0.1; infra/docker/offline/s3.Dockerfile serves on 0.0.0.0).
// The OpenSSL legacy provider is needed because s3rver's continuation tokens use DES.
"use strict";
const S3rver = require("s3rver");

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const dir = arg("dir");
const port = Number(arg("port", "0"));
const address = arg("address", "127.0.0.1");
const buckets = [];
for (let i = 0; i < process.argv.length; i++) if (process.argv[i] === "--bucket") buckets.push({ name: process.argv[i + 1] });
if (!dir) {
  console.error("usage: s3-server.cjs --dir DIR [--port N] [--address A] [--bucket NAME]...");
  process.exit(2);
}

// Path-style addressing only: s3rver would take any other host name (`minio` in docker-compose)
// for a bucket's virtual host.
const server = new S3rver({ address, port, directory: dir, silent: true, configureBuckets: buckets, vhostBuckets: false });

// Ahead of s3rver's router: abort a multipart upload by removing its parts.
server.middleware.unshift(async (ctx, next) => {
  if (ctx.method === "DELETE" && ctx.query.uploadId !== undefined) {
    const uploadId = String(ctx.query.uploadId).replace(/[^A-Za-z0-9_-]/g, "");
    const bucket = decodeURIComponent(ctx.path.split("/")[1] || "");
    const fs = require("node:fs/promises");
    const path = require("node:path");
    if (uploadId && bucket) await fs.rm(path.join(server.store.getResourcePath(bucket, undefined, "uploads"), uploadId), { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  return next();
});

server.run().then(({ port: actual }) => {
  console.log(`s3 listening on ${actual}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close().finally(() => process.exit(0)));
