// The worker side of range-fetcher.ts: ranged GETs written straight into a blob's partial file.
// It runs on its own thread because its heap is tiny: the socket hands out a fresh buffer per
// read, and in the daemon's much larger heap the garbage collections those buffers set off cost
// more than the download itself. Jobs arrive as {id, url, headers, path, start, end, wholeOK};
// progress goes back as {id, wrote} after each write, the end as {id, done} or {id, error, …}.
import { parentPort } from "node:worker_threads";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { open } from "node:fs/promises";

const SLAB = 512 << 10;
const spare = [];
const take = () => spare.pop() ?? Buffer.allocUnsafeSlow(SLAB);
const give = (b) => {
  if (spare.length < 64) spare.push(b);
};
const running = new Map();

parentPort.on("message", (m) => {
  if (m.cancel !== undefined) return running.get(m.cancel)?.abort();
  const controller = new AbortController();
  running.set(m.id, controller);
  fetchRange(m, controller.signal).then(
    () => parentPort.postMessage({ id: m.id, done: true }),
    (e) => parentPort.postMessage({ id: m.id, error: e.message, status: e.status ?? 0, code: e.code, name: e.name }),
  ).finally(() => running.delete(m.id));
});

function get(url, headers, signal) {
  const u = new URL(url);
  const send = u.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(u, { method: "GET", headers, signal }, resolve);
    req.once("error", reject);
    req.end();
  });
}

async function fetchRange(job, signal) {
  const { url, headers, path, start, end, wholeOK } = job;
  let res;
  try {
    res = await get(url, headers, signal);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw Object.assign(new Error(`GET ${url}: ${e.code ?? e.message}`), { status: 0 });
  }
  const status = res.statusCode ?? 0;
  if (status !== 206 && !(status === 200 && wholeOK && res.headers["content-length"] === String(end - start + 1))) {
    // Not read: an error body can be as long as the registry likes.
    res.destroy();
    throw Object.assign(new Error(`ranged GET of ${url} answered ${status}, expected 206 Partial Content`), { status });
  }
  const fh = await open(path, "r+");
  let pos = start;
  let slab = take();
  let filled = 0;
  let writing;
  // One write in flight while the next buffer fills; progress counts only written bytes.
  const flush = async () => {
    await writing;
    writing = undefined;
    if (filled === 0) return;
    const full = slab;
    const n = filled;
    const at = pos - n;
    slab = take();
    filled = 0;
    writing = (async () => {
      try {
        for (let done = 0; done < n; ) done += (await fh.write(full, done, n - done, at + done)).bytesWritten;
      } finally {
        give(full);
      }
      parentPort.postMessage({ id: job.id, wrote: n });
    })();
    writing.catch(() => undefined);
  };
  try {
    // The loop ends with the response, so the connection goes back to the pool; a server that
    // sends more than the range asked for is cut off.
    for await (const chunk of res) {
      const want = end + 1 - pos;
      const buf = chunk.length > want ? chunk.subarray(0, want) : chunk;
      for (let off = 0; off < buf.length; ) {
        const n = buf.copy(slab, filled, off);
        filled += n;
        off += n;
        pos += n;
        if (filled === SLAB) await flush();
      }
      if (chunk.length > want) break;
    }
    await flush();
    await writing;
  } finally {
    await writing?.catch(() => undefined);
    give(slab);
    if (!res.complete) res.destroy();
    await fh.close();
  }
  if (pos <= end) throw Object.assign(new Error(`connection closed after ${pos - start} of ${end + 1 - start} bytes of a part`), { status: 0 });
}
