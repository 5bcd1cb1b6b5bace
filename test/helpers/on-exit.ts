// Clean-up that runs when the test process ends, however it ends: its last test done, an uncaught
// failure, or a signal. The test runner ends a file that runs past its limit with SIGTERM, and a
// signal skips 'exit' handlers unless it is handled; so the first registration also turns SIGTERM,
// SIGINT and SIGHUP into an exit with the code a shell reports for them.

const cleanups: Array<() => void> = [];

/** Runs `fn` (synchronously: nothing asynchronous runs after 'exit') when the process ends. */
export function onExit(fn: () => void): void {
  if (cleanups.length === 0) {
    process.once("exit", () => {
      for (const cleanup of cleanups) {
        try {
          cleanup();
        } catch {
          // The process is ending: one clean-up failing must not stop the others.
        }
      }
    });
    for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130], ["SIGHUP", 129]] as const) process.once(signal, () => process.exit(code));
  }
  cleanups.push(fn);
}
