// How many bytes this process has read, as the kernel counts them: a bound on I/O that does not
// depend on the machine's speed ("reads the header, not the 3 GiB of data" without timing it).

import { readFileSync } from "node:fs";

/** Bytes read through read(2) and its kin so far (Linux's /proc/self/io rchar); undefined elsewhere. */
export function bytesReadByProcess(): number | undefined {
  try {
    const m = /^rchar: (\d+)$/m.exec(readFileSync("/proc/self/io", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
