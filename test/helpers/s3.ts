// An S3-compatible server for tests: s3rver in its own process (test/helpers/s3-server.cjs) on a
// free port with its data in a temporary directory, removed by stop().

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.ts";

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** The environment that points the registry at this server. */
  env: Record<string, string>;
  process: ChildProcess;
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL("./s3-server.cjs", import.meta.url));

/** The environment that points the registry at an s3rver (which accepts any signature for S3RVER). */
export function s3Env(endpoint: string, bucket: string): Record<string, string> {
  return {
    S3_BUCKET: bucket,
    S3_ENDPOINT: endpoint,
    S3_REGION: "us-east-1",
    S3_FORCE_PATH_STYLE: "true",
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
  };
}

/** Starts s3rver on `port` with its data in `dir`; resolves once it listens. */
export async function spawnS3(dir: string, port: number, bucket: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--openssl-legacy-provider", script, "--dir", dir, "--port", String(port), "--bucket", bucket], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 20s:\n${log}`)), 20_000);
    const onData = (d: Buffer): void => {
      log += d.toString();
      if (log.includes("s3 listening on")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with ${code}:\n${log}`));
    });
  });
  return child;
}

export async function startS3(bucket = "corral-test"): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), "corral-s3-"));
  const port = await freePort();
  const child = await spawnS3(dir, port, bucket);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    process: child,
    env: s3Env(endpoint, bucket),
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
