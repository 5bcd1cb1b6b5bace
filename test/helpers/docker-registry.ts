// Debian's docker-registry (CNCF Distribution 2.8) as a reference registry: filesystem storage in
// a temporary folder, no auth, on a free loopback port. Installed with apt when missing.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { aptInstall } from "./apt.ts";
import { trackChild } from "./daemon.ts";

export interface DockerRegistry {
  url: string;
  host: string;
  dir: string;
  stop(): Promise<void>;
}

/** The binary, installing Debian's package if it is missing; undefined when that is impossible. */
export function dockerRegistryBinary(): string | undefined {
  const which = (): string | undefined => {
    const r = spawnSync("sh", ["-c", "command -v docker-registry"], { encoding: "utf8" });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  const found = which();
  if (found) return found;
  aptInstall(["docker-registry"]);
  return which();
}

export async function startDockerRegistry(): Promise<DockerRegistry> {
  const bin = dockerRegistryBinary();
  if (!bin) throw new Error("docker-registry is not installed and could not be installed with apt-get");
  const dir = await mkdtemp(join(tmpdir(), "distribution-"));
  const port = await freePort();
  const config = join(dir, "config.yml");
  await writeFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(bin, ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
  trackChild(child);
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  // Until it answers or exits: a loaded machine may take long to start it, the test runner bounds that.
  for (;;) {
    const ok = await fetch(`${url}/v2/`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    if (child.exitCode !== null || child.signalCode !== null) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry exited with ${child.exitCode ?? child.signalCode}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
