// The local stand-in for node:20-bookworm-slim that the images build on where Docker Hub cannot
// be reached (infra/docker/offline/base.Dockerfile): a debootstrapped Debian of the host's own
// release from the host's own mirror, plus the host's node, npm and CA bundle. Both images are
// tagged with a hash of what went into them, so a later run on the same engine finds them and
// skips the work (debootstrap alone takes a minute or more); any change makes a new tag. And the
// snapshot of the checkout the project's images are built from.

import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, readdirSync } from "node:fs";
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { aptInstall } from "./apt.ts";
import { cacheDir, runProgram, tail, type Engine } from "./container-engine.ts";
import { repoRoot } from "./daemon.ts";

const BASE_DOCKERFILE = join(repoRoot, "infra/docker/offline/base.Dockerfile");
/** Bumped when the way the Debian image is made changes in a way its inputs do not show. */
const DEBIAN_RECIPE = "debootstrap --variant=minbase v1";

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path).on("data", (d) => h.update(d)).on("error", reject).on("end", () => resolve(h.digest("hex")));
  });
}

const short = (parts: string[]): string => createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 16);

/** The host's release (VERSION_CODENAME), whose C library the host's node binary runs on. */
export function hostCodename(): string {
  const osRelease = existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "";
  const codename = /^VERSION_CODENAME="?([a-z]+)"?$/m.exec(osRelease)?.[1];
  const family = [/^ID="?([^"\n]*)"?$/m, /^ID_LIKE="?([^"\n]*)"?$/m].flatMap((re) => re.exec(osRelease)?.[1]?.split(" ") ?? []);
  if (!codename || !family.some((id) => id === "debian" || id === "ubuntu")) {
    throw new Error("the local base image is debootstrapped from the host's own release, and this host is neither Debian nor a derivative with a VERSION_CODENAME (/etc/os-release)");
  }
  return codename;
}

/** The mirror the host's apt uses for `codename` (deb822 .sources or one-line sources.list). */
export function hostMirror(codename: string): string {
  const files = ["/etc/apt/sources.list"];
  if (existsSync("/etc/apt/sources.list.d")) for (const f of readdirSync("/etc/apt/sources.list.d").sort()) files.push(join("/etc/apt/sources.list.d", f));
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, "utf8");
    if (f.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string): string[] => new RegExp(`^${name}:\\s*(.*)$`, "mi").exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (field("Types").includes("deb") && field("Suites").includes(codename) && field("Components").includes("main")) return field("URIs")[0]!;
      }
    } else {
      for (const line of text.split("\n")) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$/.exec(line.trim());
        if (m && m[2] === codename && m[3]!.split(/\s+/).includes("main")) return m[1]!;
      }
    }
  }
  return "http://deb.debian.org/debian";
}

async function imageExists(engine: Engine, tag: string): Promise<boolean> {
  return (await engine.docker(["image", "inspect", "--format", "{{.Id}}", tag])).code === 0;
}

/** A minimal Debian root file system of the host's release, imported as an image; its tag. */
export async function debianImage(engine: Engine): Promise<string> {
  const codename = hostCodename();
  const mirror = hostMirror(codename);
  const tag = `corral-offline/debian:${codename}-${short([DEBIAN_RECIPE, codename, mirror])}`;
  if (await imageExists(engine, tag)) return tag;
  if (!existsSync("/usr/sbin/debootstrap") && !aptInstall(["--no-install-recommends", "debootstrap"])) throw new Error("debootstrap is not installed and apt-get could not install it");
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, "rootfs-"));
  try {
    const rootfs = join(work, "rootfs");
    const boot = await runProgram("debootstrap", ["--variant=minbase", codename, rootfs, mirror]);
    if (boot.code !== 0) throw new Error(`debootstrap ${codename} from ${mirror} failed:\n${tail(boot.stdout + boot.stderr)}`);
    // The engine's CLI reads the tar from stdin; pipefail so a failing tar is not an empty image.
    const imported = await runProgram("bash", ["-o", "pipefail", "-c", 'tar -C "$1" --numeric-owner -c . | "$2" import - "$3"', "import", rootfs, engine.dockerPath, tag], { env: engine.env });
    if (imported.code !== 0) throw new Error(`importing the Debian root file system failed:\n${tail(imported.stderr)}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return tag;
}

/** The npm that runs here: its package directory. */
function hostNpmDir(): string {
  const r = spawnSync("npm", ["root", "-g"], { encoding: "utf8" });
  const dir = r.status === 0 ? join(r.stdout.trim(), "npm") : "";
  if (!dir || !existsSync(join(dir, "package.json"))) throw new Error("npm's package directory was not found (`npm root -g`/npm): the base image needs the host's npm");
  return dir;
}

/** The CA bundle the host trusts (npm in the images must reach the same registry through the same proxies). */
function hostCABundle(): string | undefined {
  for (const f of ["/etc/ssl/certs/ca-certificates.crt", process.env["NODE_EXTRA_CA_CERTS"]]) if (f && existsSync(f)) return f;
  return undefined;
}

/**
 * The base image for infra/docker's Dockerfiles (their BASE argument): Debian of the host's
 * release with the node binary running this test, the host's npm and CA bundle. Returns its tag.
 */
export async function localNodeImage(engine: Engine, debian: string): Promise<string> {
  const npmDir = hostNpmDir();
  const npmVersion = (JSON.parse(await readFile(join(npmDir, "package.json"), "utf8")) as { version: string }).version;
  const ca = hostCABundle();
  const tag = `corral-offline/node:${short([
    debian,
    await sha256File(process.execPath),
    npmVersion,
    ca ? await sha256File(ca) : "no CA bundle",
    await sha256File(BASE_DOCKERFILE),
  ])}`;
  if (await imageExists(engine, tag)) return tag;
  await mkdir(cacheDir, { recursive: true });
  const context = await mkdtemp(join(cacheDir, "base-context-"));
  try {
    await copyFile(process.execPath, join(context, "node"));
    await cp(npmDir, join(context, "npm"), { recursive: true });
    if (ca) await copyFile(ca, join(context, "ca-certificates.crt"));
    else await writeFile(join(context, "ca-certificates.crt"), "");
    const built = await engine.docker(["build", "--build-arg", `DEBIAN=${debian}`, "-f", BASE_DOCKERFILE, "-t", tag, context]);
    if (built.code !== 0) throw new Error(`building the base image failed:\n${tail(built.stdout + built.stderr)}`);
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  return tag;
}

/** What the build context never needs (as .dockerignore says), by name at any depth. */
const NOT_IN_CONTEXT = new Set(["node_modules", ".git", "test-artifacts", "registry-data"]);

/**
 * A copy of the checkout to build images from: the compiled programs (apps/<app>/dist) in it stay
 * as they were while the checkout is rebuilt, so the images and what they are compared with come
 * from the same build. Refuses an app whose dist is missing, saying what to run.
 */
export async function checkoutSnapshot(): Promise<string> {
  for (const app of ["apps/daemon", "apps/registry"]) {
    if (!existsSync(join(repoRoot, app, "dist/cli.js"))) throw new Error(`${app}/dist is missing: run \`npm run build\` first`);
  }
  const dir = await mkdtemp(join(tmpdir(), "corral-containers-context-"));
  await cp(repoRoot, dir, { recursive: true, filter: (src) => !NOT_IN_CONTEXT.has(basename(src)) });
  for (const app of ["apps/daemon", "apps/registry"]) {
    if (!existsSync(join(dir, app, "dist/cli.js"))) throw new Error(`${app}/dist was being rebuilt while it was copied: run the test again`);
  }
  return dir;
}
