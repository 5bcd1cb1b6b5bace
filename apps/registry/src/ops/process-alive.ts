// Whether a process id names a live process: lock and state files record the pid that wrote them,
// and one whose process is gone was left behind.

/** True while `pid` runs (also when it is another user's, which signal 0 may not reach). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
