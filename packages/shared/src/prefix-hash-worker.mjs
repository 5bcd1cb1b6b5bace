// The worker side of prefix-hasher.ts: hashes the file named in workerData front to back, as far
// as each message allows ({upTo}), and answers {digest} to {upTo, finish: true}. Reads are
// synchronous: this thread does nothing else, and it keeps the order of the messages.
import { parentPort, workerData } from "node:worker_threads";
import { closeSync, openSync, readSync } from "node:fs";
import { createHash } from "node:crypto";

const { path } = workerData;
const fd = openSync(path, "r");
const hash = createHash("sha256");
const buf = Buffer.allocUnsafe(4 << 20);
let pos = 0;

parentPort.on("message", (m) => {
  try {
    while (pos < m.upTo) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, m.upTo - pos), pos);
      if (n === 0) throw new Error(`${path} ends after ${pos} bytes, ${m.upTo} were expected`);
      hash.update(n === buf.length ? buf : buf.subarray(0, n));
      pos += n;
    }
    if (m.finish) {
      closeSync(fd);
      parentPort.postMessage({ digest: `sha256:${hash.digest("hex")}` });
    }
  } catch (e) {
    parentPort.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
});
