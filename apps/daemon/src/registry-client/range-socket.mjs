// A ranged GET over plain HTTP/1.1 that reads the range's bytes from the socket straight into the
// memory they are written to the partial file from (range-worker.mjs uses it for http: URLs):
// slab-writer.ts's page-aligned megabytes, written past the page cache while the next one fills,
// which are the hash window's own pages where it can. Only the response head, and the body bytes
// that come with it in the same read, go through a small buffer of their own.
// Written by hand because no HTTP client offers it: node:http (and undici) hand out a new buffer
// for every socket read, 64 KiB at a time, and that per-read allocation, its garbage collection
// and the stream machinery around it cost a pull about 0.8 CPU-seconds per GB on top of the
// kernel's own copying, more than receiving and writing the bytes themselves (docs/architecture.md,
// "Data flow: a pull"). A socket opened with `onread` reads into a buffer of our choosing, which a
// function given there picks before each read.
// TLS connections keep node:https, whose sockets cannot read that way.
//
// Only what a registry's answer to a ranged GET needs is understood: a status line, headers, and
// a body framed by Content-Length (or, for the short body of an error, chunked or ended by the
// close). Every request says `Connection: close`: a part is megabytes, so one connection each
// costs nothing that matters, and nothing is left to resynchronise after an answer is cut off.
import { connect } from "node:net";
import { SlabWriter } from "./slab-writer.ts";

/** The buffer for response heads (and what follows them in the same read). */
const HEAD_READ_BYTES = 64 << 10;
/** Response heads beyond this are refused (a registry's are a few hundred bytes). */
const MAX_HEAD = 64 << 10;
/** Error bodies are kept up to this, as node:http's path keeps them. */
const MAX_TEXT = 64 << 10;
/** Progress goes to the main thread at most once per this many bytes written (and at the end). */
const REPORT_BYTES = 1 << 20;

const spare = [];
const takeBuffer = () => spare.pop() ?? Buffer.allocUnsafeSlow(HEAD_READ_BYTES);
const giveBuffer = (b) => {
  if (spare.length < 16) spare.push(b);
};

/** An error the caller reports with `status` (0: no complete answer, worth another attempt). */
const failure = (message, status, code) => Object.assign(new Error(message), { status, ...(code ? { code } : {}) });

/** Header names and values go on the wire as they are, so nothing may end a line early. */
function requestHead(u, headers) {
  let head = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    const v = String(value);
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(v) || /[^\t\x20-\xff]/.test(v)) {
      throw failure(`invalid request header ${JSON.stringify(name)}`, 502);
    }
    head += `${name}: ${v}\r\n`;
  }
  return `${head}Connection: close\r\n\r\n`;
}

/** Status and lower-cased headers (the first of each name) of a response head, or undefined if it is not HTTP. */
function parseHead(text) {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
  if (!m) return undefined;
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    if (!(name in headers)) headers[name] = line.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers };
}

/** The payload of a chunked body, as far as it goes (an error's text: a cut-off end is kept). */
function unchunk(raw) {
  const out = [];
  for (let at = 0; at < raw.length; ) {
    const eol = raw.indexOf("\r\n", at);
    if (eol < 0) break;
    const size = parseInt(raw.toString("latin1", at, eol).split(";")[0], 16);
    if (!Number.isFinite(size) || size <= 0) break;
    out.push(raw.subarray(eol + 2, Math.min(eol + 2 + size, raw.length)));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/**
 * Fetches bytes `job.start`..`job.end` of `job.url` (http:) into `job.path`, as range-worker.mjs's
 * node:http path does, with the same checks and messages. `events` gets `started()` when the
 * range's bytes begin, `wrote(n)` as they reach the file, and `alive()` while bytes arrive.
 * Resolves undefined when the range is written; `{ answer }` for a response without its bytes;
 * `{ unframed: true }` for a 2xx body this reader cannot frame (no Content-Length), which the
 * caller then fetches through node:http.
 */
export function fetchRangePlain(job, signal, events) {
  const u = new URL(job.url);
  const { start, end, wholeOK } = job;
  let head;
  try {
    head = requestHead(u, job.headers);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    const buffer = takeBuffer();
    /** Where the body's bytes go (slab-writer.ts); it pauses the socket while the disk catches up. */
    let writer;
    let settled = false;
    let phase = "head";
    let headBytes = Buffer.alloc(0);
    let pos = start;
    let remaining = 0;
    let unreported = 0;
    let answer;
    let text = [];
    let textBytes = 0;
    let textFraming;
    let lastAlive = performance.now();

    const report = () => {
      if (unreported > 0) events.wrote(unreported);
      unreported = 0;
    };
    const finish = (error, value) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      // Bytes not yet written are not reported, so the next attempt fetches them again.
      const closed = writer ? writer.close() : Promise.resolve();
      closed.catch((e) => void (error ??= e)).then(() => {
        report();
        giveBuffer(buffer);
        if (error) reject(error);
        else resolve(value);
      });
    };
    const onAbort = () => {
      const e = new Error("the download was cancelled");
      e.name = "AbortError";
      finish(e);
    };

    const answerDone = () => {
      const raw = Buffer.concat(text);
      const body = textFraming === "chunked" ? unchunk(raw) : raw;
      answer.text = answer.status >= 400 ? body.subarray(0, MAX_TEXT).toString("utf8") : "";
      finish(undefined, { answer });
    };

    const onHead = (h, rest) => {
      const { status, headers } = h;
      if (status !== 206 && status !== 200) {
        answer = { status, location: headers["location"] ?? null, challenge: headers["www-authenticate"] ?? null, text: "" };
        if (status < 400) return finish(undefined, { answer });
        phase = "answer";
        textFraming = headers["transfer-encoding"] ? "chunked" : headers["content-length"] !== undefined ? Number(headers["content-length"]) : "close";
        return onAnswerBytes(rest);
      }
      if (status === 200 && !(wholeOK && headers["content-length"] === String(end - start + 1))) {
        return finish(failure(`ranged GET of ${job.url} answered ${status}, expected 206 Partial Content`, 502));
      }
      const declared = status === 206 ? /^bytes \d+-\d+\/(\d+)$/.exec(headers["content-range"] ?? "")?.[1] : headers["content-length"];
      if (declared !== undefined && Number(declared) !== job.total) {
        return finish(failure(`the registry has ${declared} bytes for this blob, the manifest says ${job.total}`, 502));
      }
      if (headers["transfer-encoding"] || !/^\d+$/.test(headers["content-length"] ?? "")) return finish(undefined, { unframed: true });
      remaining = Number(headers["content-length"]);
      writer = new SlabWriter(job.path, pos, {
        onWritten: (n) => {
          unreported += n;
          if (unreported >= REPORT_BYTES) report();
        },
        onRoom: () => socket.resume(),
        onError: (e) => finish(e),
        window: job.window,
      });
      phase = "body";
      events.started();
      return onBodyBytes(rest, false);
    };

    const onAnswerBytes = (bytes) => {
      const limit = typeof textFraming === "number" ? Math.min(textFraming, MAX_TEXT) : MAX_TEXT;
      const take = bytes.subarray(0, Math.max(0, limit - textBytes));
      if (take.length) text.push(Buffer.from(take));
      textBytes += take.length;
      // A chunked or unframed text ends with the connection (the request asked for that).
      if (textBytes >= limit) answerDone();
    };

    /**
     * Where the next read goes: the writer's memory once the body began, up to what the range still
     * needs; the head's buffer before (a read that lands anywhere else went into the writer's).
     */
    const nextBuffer = () => {
      if (phase !== "body" || settled) return buffer;
      const space = writer.space();
      return space.subarray(0, Math.min(space.length, remaining, end + 1 - pos));
    };

    /** `n` body bytes arrived: read into the writer's memory (`direct`), or in `bytes` to copy there. */
    const onBodyBytes = (bytes, direct) => {
      // The server's framing first, then the range: a server that sends more than asked is cut off.
      const framed = bytes.subarray(0, remaining);
      remaining -= framed.length;
      const useful = framed.subarray(0, end + 1 - pos);
      if (direct) writer.advance(useful.length);
      else writer.add(useful);
      pos += useful.length;
      const now = performance.now();
      if (now - lastAlive >= 250) {
        lastAlive = now;
        events.alive();
      }
      if (pos > end) {
        // Every byte is in: the socket is done with (the request asked for it to close), and
        // the range ends when the last of its bytes is in the file.
        phase = "written";
        socket.destroy();
        writer.flush().then(() => finish(undefined, undefined), (e) => finish(e));
        return false;
      }
      if (remaining === 0) return finish(failure(`connection closed after ${pos - start} of ${end + 1 - start} bytes of a part`, 0));
      // Returning false pauses the socket until the writer has room again.
      if (writer.backlogged) return false;
    };

    const onRead = (n, b) => {
      if (settled) return false;
      try {
        const bytes = b.subarray(0, n);
        if (phase === "written") return false;
        if (phase === "body") return onBodyBytes(bytes, b !== buffer);
        if (phase === "answer") return onAnswerBytes(bytes);
        headBytes = Buffer.concat([headBytes, bytes]);
        // Informational answers (100 Continue) come before the real one.
        for (;;) {
          const i = headBytes.indexOf("\r\n\r\n");
          if (i < 0) {
            if (headBytes.length > MAX_HEAD) finish(failure(`GET ${job.url}: the response head is larger than ${MAX_HEAD} bytes`, 502));
            return;
          }
          const h = parseHead(headBytes.toString("latin1", 0, i));
          if (!h) return finish(failure(`GET ${job.url}: not an HTTP/1.1 response`, 502));
          const rest = headBytes.subarray(i + 4);
          if (h.status >= 100 && h.status < 200) {
            headBytes = rest;
            continue;
          }
          headBytes = Buffer.alloc(0);
          return onHead(h, rest);
        }
      } catch (e) {
        finish(e);
      }
    };

    const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
    const socket = connect({ host, port: Number(u.port || 80), onread: { buffer: nextBuffer, callback: onRead } });
    socket.once("connect", () => socket.write(head));
    socket.on("error", (e) => phase !== "written" && finish(phase === "head" ? failure(`GET ${job.url}: ${e.code ?? e.message}`, 0, e.code) : failure(`connection closed after ${pos - start} of ${end + 1 - start} bytes of a part: ${e.code ?? e.message}`, 0, e.code)));
    socket.on("end", () => {
      if (phase === "written") return;
      if (phase === "answer") return answerDone();
      if (phase === "head") return finish(failure(`GET ${job.url}: the connection closed before a response`, 0, "ECONNRESET"));
      finish(failure(`connection closed after ${pos - start} of ${end + 1 - start} bytes of a part`, 0));
    });
    socket.on("close", () => phase !== "written" && finish(failure(`connection closed after ${pos - start} of ${end + 1 - start} bytes of a part`, 0)));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}
