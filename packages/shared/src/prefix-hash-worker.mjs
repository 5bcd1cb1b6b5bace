// The worker side of prefix-hasher.ts: hashes one file at a time, front to back. {start} names the
// file and its window; then each {upTo} lets the hash go that far, and {upTo, finish: true} is
// answered with {digest}; after that (or an {error}) the thread waits for the next {start}. It is
// kept between downloads because starting one costs a JavaScript environment and thousands of page
// faults per pull. Bytes the writer left in the hash window (hash-window.mjs) are taken from there;
// the others are read from the file, past the page cache where the filesystem allows
// (direct-io.mjs): a blob the daemon wrote that way is not in the cache, and reading it through the
// cache would cost the pages that writing saved. Reads are synchronous: this thread does nothing
// else, and it keeps the order of the messages.
import { parentPort } from "node:worker_threads";
import { closeSync, constants, openSync } from "node:fs";
import { createHash } from "node:crypto";
import { alignedBuffers, openDirectSync, readSpanSync } from "./direct-io.mjs";
import { HashWindow } from "./hash-window.mjs";

// One read buffer for every file this thread hashes.
const aligned = alignedBuffers(4 << 20, 1)?.[0];
const buf = aligned ?? Buffer.allocUnsafe(4 << 20);

/** The file being hashed, from its {start} to its digest or error. */
let job;

function begin({ path, window: memory, total, partSize, streams }) {
  const window = memory ? new HashWindow(memory) : undefined;
  const fd = openSync(path, "r");
  const current = { path, window, fd, direct: undefined, hash: createHash("sha256"), pos: 0, unmapped: [] };
  current.direct = aligned ? openDirectSync(path, constants.O_RDONLY) : undefined;
  // While the first bytes arrive the hash has little to do, and the download thread would
  // otherwise take a fault on every page of the window it copies into first: the window's memory
  // is mapped here, a megabyte between messages, in the order the parts' writers reach it.
  current.unmapped = window ? window.mappingOrder(partSize, streams, total) : [];
  job = current;
  setImmediate(() => mapNext(current));
}

function mapNext(owner) {
  // A job that has ended leaves the rest of its window to the next one's own mapping.
  if (job !== owner) return;
  const stretch = owner.unmapped.shift();
  if (!stretch) return;
  owner.window.map(stretch[0], stretch[1]);
  setImmediate(() => mapNext(owner));
}

function end() {
  const j = job;
  job = undefined;
  for (const fd of j ? [j.fd, j.direct] : []) {
    try {
      if (fd !== undefined) closeSync(fd);
    } catch {
      // A descriptor opened for reading: closing it can lose nothing.
    }
  }
}

function advance(upTo) {
  const j = job;
  const refused = () => {
    closeSync(j.direct);
    j.direct = undefined;
  };
  while (j.pos < upTo) {
    const held = j.window ? j.window.held(j.pos, upTo) : 0;
    if (held > 0) {
      j.hash.update(j.window.view(j.pos, held));
      j.pos += held;
    } else {
      const limit = Math.min(upTo, j.pos + buf.length);
      const { at, n } = readSpanSync(j.fd, j.direct, buf, j.pos, j.window ? j.window.nextHeld(j.pos, limit) : limit, refused);
      if (n === 0) throw new Error(`${j.path} ends after ${j.pos} bytes, ${upTo} were expected`);
      j.hash.update(buf.subarray(at, at + n));
      j.pos += n;
    }
    j.window?.hashedTo(j.pos);
  }
}

parentPort.on("message", (m) => {
  try {
    if (m.start) return begin(m.start);
    // Messages of a job that failed are answered by nothing: its error was sent.
    if (!job) return;
    advance(m.upTo);
    if (m.finish) {
      const digest = `sha256:${job.hash.digest("hex")}`;
      end();
      parentPort.postMessage({ digest });
    }
  } catch (e) {
    end();
    parentPort.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
});
