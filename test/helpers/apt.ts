// Installing a Debian package a suite needs. Suites run two at a time and several install what
// they need at start, so apt's locks are often held by another suite: a command that finds a lock
// held is run again once it is free, however long the other suite takes on this machine. Only
// failures of another kind count against the attempts; the test runner's overall limit bounds the
// rest.

import { spawnSync } from "node:child_process";

/** dpkg's lock is waited for by apt itself, in rounds of this many seconds. */
const WAIT = ["-o", "DPkg::Lock::Timeout=600"];
/** What apt says when another apt or dpkg holds a lock it needs. */
const LOCKED = /Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock directory|is held by process/;

function apt(args: string[], inherit: boolean): { ok: boolean; locked: boolean } {
  const r = spawnSync("apt-get", [...WAIT, "-y", "-qq", ...args], {
    stdio: ["ignore", inherit ? "inherit" : "ignore", "pipe"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    encoding: "utf8",
  });
  if (inherit && r.stderr) process.stderr.write(r.stderr);
  return { ok: r.status === 0, locked: r.status !== 0 && LOCKED.test(r.stderr ?? "") };
}

/** Runs an apt-get command until it ends other than on a held lock. */
function aptWhenFree(args: string[], inherit: boolean): boolean {
  for (;;) {
    const r = apt(args, inherit);
    if (!r.locked) return r.ok;
    spawnSync("sleep", ["2"]);
  }
}

/**
 * `apt-get install -y <args>`, refreshing the package lists when the first try fails; true when
 * it succeeded. `args` may carry options such as --no-install-recommends.
 */
export function aptInstall(args: string[], opts: { verbose?: boolean } = {}): boolean {
  const verbose = opts.verbose ?? false;
  if (aptWhenFree(["install", ...args], verbose)) return true;
  for (let attempt = 0; attempt < 4; attempt++) {
    if (aptWhenFree(["update"], verbose) && aptWhenFree(["install", ...args], verbose)) return true;
    spawnSync("sleep", [String(5 * (attempt + 1))]);
  }
  return false;
}
