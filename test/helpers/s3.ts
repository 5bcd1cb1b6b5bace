// An S3-compatible server for tests: s3rver in its own process (test/helpers/s3-server.cjs) on a
// free port with its data in a temporary directory, removed by stop().

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.ts";
import { trackChild } from "./daemon.ts";

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

/**
 * Starts s3rver on `port` with its data in `dir`; resolves once it listens. It is killed when the
 * test process exits, also if it never comes up.
 */
export async function spawnS3(dir: string, port: number, bucket: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--openssl-legacy-provider", script, "--dir", dir, "--port", String(port), "--bucket", bucket], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  trackChild(child);
  let log = "";
  // Until it says it listens or exits: a loaded machine may take long, the test runner bounds that.
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      log += d.toString();
      if (log.includes("s3 listening on")) resolve();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`s3rver exited with ${code}:\n${log}`)));
  });
  return child;
}

export async function startS3(bucket = "corral-test"): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), "corral-s3-"));
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = await spawnS3(dir, port, bucket);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
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
