// The worker side of prefix-hasher.ts: hashes the file named in workerData front to back, as far
// as each message allows ({upTo}), and answers {digest} to {upTo, finish: true}. Bytes the writer
// left in the hash window (workerData.window, hash-window.mjs) are taken from there; the others are
// read from the file, past the page cache where the filesystem allows (direct-io.mjs): a blob the
// daemon wrote that way is not in the cache, and reading it through the cache would cost the pages
// that writing saved. Reads are synchronous: this thread does nothing else, and it keeps the order
// of the messages.
import { parentPort, workerData } from "node:worker_threads";
import { closeSync, constants, openSync } from "node:fs";
import { createHash } from "node:crypto";
import { alignedBuffers, openDirectSync, readSpanSync } from "./direct-io.mjs";
import { HashWindow } from "./hash-window.mjs";

const { path } = workerData;
const window = workerData.window ? new HashWindow(workerData.window) : undefined;
const fd = openSync(path, "r");
const aligned = alignedBuffers(4 << 20, 1)?.[0];
const buf = aligned ?? Buffer.allocUnsafe(4 << 20);
let direct = aligned ? openDirectSync(path, constants.O_RDONLY) : undefined;
const refused = () => {
  closeSync(direct);
  direct = undefined;
};
const hash = createHash("sha256");
let pos = 0;

// While the first bytes arrive the hash has little to do, and the download thread would otherwise
// take a fault on every page of the window it copies into first: the window's memory is mapped
// here, a megabyte between messages, in the order the parts' writers reach it.
const unmapped = window ? window.mappingOrder(workerData.partSize, workerData.streams, workerData.total) : [];
const mapNext = () => {
  const stretch = unmapped.shift();
  if (!stretch) return;
  window.map(stretch[0], stretch[1]);
  setImmediate(mapNext);
};
setImmediate(mapNext);

parentPort.on("message", (m) => {
  try {
    while (pos < m.upTo) {
      const held = window ? window.held(pos, m.upTo) : 0;
      if (held > 0) {
        hash.update(window.view(pos, held));
        pos += held;
      } else {
        const limit = Math.min(m.upTo, pos + buf.length);
        const { at, n } = readSpanSync(fd, direct, buf, pos, window ? window.nextHeld(pos, limit) : limit, refused);
        if (n === 0) throw new Error(`${path} ends after ${pos} bytes, ${m.upTo} were expected`);
        hash.update(buf.subarray(at, at + n));
        pos += n;
      }
      window?.hashedTo(pos);
    }
    if (m.finish) {
      closeSync(fd);
      if (direct !== undefined) closeSync(direct);
      parentPort.postMessage({ digest: `sha256:${hash.digest("hex")}` });
    }
  } catch (e) {
    parentPort.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
});
