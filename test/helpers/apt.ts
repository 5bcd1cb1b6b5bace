// Installing a Debian package a suite needs. Suites run two at a time and several install what
// they need at start, so apt's locks are often held by another suite: dpkg's lock is waited for,
// and the package-list lock (which apt-get update does not wait for) by trying again.

import { spawnSync } from "node:child_process";

const WAIT = ["-o", "DPkg::Lock::Timeout=600"];

function apt(args: string[], inherit: boolean): boolean {
  const r = spawnSync("apt-get", [...WAIT, "-y", "-qq", ...args], {
    stdio: inherit ? "inherit" : "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 600_000,
  });
  return r.status === 0;
}

/**
 * `apt-get install -y <args>`, refreshing the package lists when the first try fails; true when
 * it succeeded. `args` may carry options such as --no-install-recommends.
 */
export function aptInstall(args: string[], opts: { verbose?: boolean } = {}): boolean {
  const verbose = opts.verbose ?? false;
  if (apt(["install", ...args], verbose)) return true;
  for (let attempt = 0; attempt < 4; attempt++) {
    if (apt(["update"], verbose) && apt(["install", ...args], verbose)) return true;
    spawnSync("sleep", [String(5 * (attempt + 1))]);
  }
  return false;
}
