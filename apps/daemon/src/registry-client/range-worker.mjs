// The worker side of range-fetcher.ts: ranged GETs written into a blob's partial file.
// It runs on its own thread because its heap is tiny: the socket hands out a fresh buffer per
// read, each counted as external memory, and V8 answers every few tens of megabytes of them with
// a full garbage collection; in the daemon's heap those cost 0.45 s per GB pulled, here a tenth of
// that (docs/architecture.md, "Pull"). What to ask for and what an answer means (tokens,
// redirects, retries) is decided on the main thread by the registry session; this side only
// moves bytes. Jobs arrive as {id, url, headers, path, start, end, wholeOK, total}; while bytes
// arrive it sends {id, alive} at most every ALIVE_MS (for the stall watchdog), {id, wrote} after
// each write, {id, started} when the range's bytes begin, and at the end {id, done}, or {id, answer: {status, location, challenge, text}} for
// a response that carries no bytes of the range, or {id, error, …}.
import { parentPort } from "node:worker_threads";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { fetchRangePlain } from "./range-socket.mjs";
import { SlabWriter } from "./slab-writer.ts";

const running = new Map();
const ALIVE_MS = 250;

parentPort.on("message", (m) => {
  if (m.cancel !== undefined) return running.get(m.cancel)?.abort();
  const controller = new AbortController();
  running.set(m.id, controller);
  fetchRange(m, controller.signal).then(
    (r) => parentPort.postMessage(r?.answer ? { id: m.id, answer: r.answer } : { id: m.id, done: true }),
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

// Plain HTTP goes through range-socket.mjs (one reused read buffer, no allocation per read);
// TLS, and a plain answer it cannot frame, through node:http(s) below.
async function fetchRange(job, signal) {
  if (new URL(job.url).protocol === "http:") {
    const r = await fetchRangePlain(job, signal, {
      started: () => parentPort.postMessage({ id: job.id, started: true }),
      wrote: (n) => parentPort.postMessage({ id: job.id, wrote: n }),
      alive: () => parentPort.postMessage({ id: job.id, alive: true }),
    });
    if (!r?.unframed) return r;
  }
  return fetchRangeHTTP(job, signal);
}

async function fetchRangeHTTP(job, signal) {
  const { url, headers, path, start, end, wholeOK } = job;
  let res;
  try {
    res = await get(url, headers, signal);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw Object.assign(new Error(`GET ${url}: ${e.code ?? e.message}`), { status: 0 });
  }
  const status = res.statusCode ?? 0;
  if (status !== 206 && status !== 200) return { answer: await answerOf(res, status) };
  if (status === 200 && !(wholeOK && res.headers["content-length"] === String(end - start + 1))) {
    // Not read: a whole blob where a range was asked for.
    res.destroy();
    throw Object.assign(new Error(`ranged GET of ${url} answered ${status}, expected 206 Partial Content`), { status: 502 });
  }
  const declared = status === 206 ? /^bytes \d+-\d+\/(\d+)$/.exec(res.headers["content-range"] ?? "")?.[1] : res.headers["content-length"];
  if (declared !== undefined && Number(declared) !== job.total) {
    res.destroy();
    throw Object.assign(new Error(`the registry has ${declared} bytes for this blob, the manifest says ${job.total}`), { status: 502 });
  }
  parentPort.postMessage({ id: job.id, started: true });
  // The bytes go to the file as range-socket.mjs's do: through slab-writer.ts, past the page cache
  // and into the hash window; a chunk that finds the writer backlogged waits for its room.
  let pos = start;
  let room;
  let failed;
  let writer;
  try {
    writer = new SlabWriter(path, start, {
      onWritten: (n) => parentPort.postMessage({ id: job.id, wrote: n }),
      onRoom: () => room?.(),
      onError: (e) => {
        failed = e;
        room?.();
      },
      window: job.window,
    });
    // The loop ends with the response, so the connection goes back to the pool; a server that
    // sends more than the range asked for is cut off.
    let lastAlive = performance.now();
    for await (const chunk of res) {
      const now = performance.now();
      if (now - lastAlive >= ALIVE_MS) {
        lastAlive = now;
        parentPort.postMessage({ id: job.id, alive: true });
      }
      const want = end + 1 - pos;
      const buf = chunk.length > want ? chunk.subarray(0, want) : chunk;
      writer.add(buf);
      pos += buf.length;
      if (failed === undefined && writer.backlogged) await new Promise((resolve) => (room = resolve));
      if (failed !== undefined) throw failed;
      if (chunk.length > want) break;
    }
    await writer.flush();
  } finally {
    if (!res.complete) res.destroy();
    await writer?.close();
  }
  if (pos <= end) throw Object.assign(new Error(`connection closed after ${pos - start} of ${end + 1 - start} bytes of a part`), { status: 0 });
}

/**
 * What a response without the range's bytes says: where to go, what credentials, or why not. Its
 * body (an error message, a redirect's page) is read up to 64 KiB, so that the connection goes
 * back to the pool; one that goes on is cut off.
 */
async function answerOf(res, status) {
  const chunks = [];
  let n = 0;
  for await (const chunk of res) {
    chunks.push(chunk);
    n += chunk.length;
    if (n >= 64 << 10) break;
  }
  if (!res.complete) res.destroy();
  const text = status >= 400 ? Buffer.concat(chunks).subarray(0, 64 << 10).toString("utf8") : "";
  return { status, location: res.headers["location"] ?? null, challenge: res.headers["www-authenticate"] ?? null, text };
}
