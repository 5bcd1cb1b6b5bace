// Sending a slice of a file over HTTP (a registry's blob response, a daemon's upload body) through
// pooled buffers: the next chunk is read while the previous one is being written, and a buffer goes
// back to the pool only from `write`'s callback, when the socket has taken its bytes. Node's file
// streams allocate a fresh buffer per chunk, which for a multi-gigabyte blob made garbage collection
// the main cost of the transfer (see buffer-pool.ts).

import { close } from "node:fs";
import { BufferPool } from "./buffer-pool.ts";
import { readSpan } from "./direct-io.mjs";

/** What is written to: an http ServerResponse or ClientRequest. */
export interface PumpSink {
  write(chunk: Buffer, cb: (err?: Error | null) => void): boolean;
  end(): unknown;
  destroy(err?: Error): unknown;
  once(event: "close", listener: () => void): unknown;
}

/** An open descriptor and the inclusive byte range of it to send. */
export interface FileSlice {
  fd: number;
  /** The same file opened with O_DIRECT: the bytes are read past the page cache (direct-io.mjs). */
  direct?: number;
  start: number;
  end: number;
}

/** Shared by every transfer in the process; idle buffers beyond what eight transfers use are freed. */
const buffers = new BufferPool(1 << 20, 16, { pageAligned: true });

/**
 * Copies the slice to `out` and ends it; resolves once every byte was handed to the socket. The
 * descriptor is closed here, once no read uses it (so its number cannot be reused under one). A
 * read error destroys `out` with that error; `out` closing early stops the copy.
 */
export function pumpFile(file: FileSlice, out: PumpSink, onBytes?: (n: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let position = file.start;
    let inFlight = 0;
    let reading = false;
    let stopped = false;
    let closed = false;
    const free = [buffers.take(), buffers.take()];
    let direct = file.direct;
    const closeDirect = (): void => {
      if (direct !== undefined) close(direct, () => {});
      direct = undefined;
    };
    const closeFile = (): void => {
      if (closed || reading) return;
      closed = true;
      close(file.fd, () => {});
      closeDirect();
    };
    const stop = (err?: Error | null): void => {
      if (stopped) return;
      stopped = true;
      closeFile();
      if (err) {
        out.destroy(err);
        reject(err);
      } else {
        out.end();
        resolve();
      }
    };
    const fill = (): void => {
      if (stopped || reading || free.length === 0) return;
      if (position > file.end) {
        if (inFlight === 0) stop();
        return;
      }
      const buf = free.pop()!;
      reading = true;
      const done = (err: Error | null, at = 0, n = 0): void => {
        reading = false;
        if (stopped) {
          closeFile();
          return buffers.give(buf);
        }
        if (err || n === 0) {
          buffers.give(buf);
          return stop(err ?? new Error("the file is shorter than the range being sent"));
        }
        position += n;
        inFlight++;
        out.write(at === 0 && n === buf.length ? buf : buf.subarray(at, at + n), (werr) => {
          inFlight--;
          if (werr) {
            buffers.give(buf);
            return stop(werr);
          }
          onBytes?.(n);
          if (stopped) buffers.give(buf);
          else free.push(buf);
          fill();
        });
        fill();
      };
      readSpan(file.fd, direct, buf, position, file.end + 1, closeDirect).then(
        ({ at, n }) => done(null, at, n),
        (e: Error) => done(e),
      );
    };
    // The other side going away stops the copy; buffers still being written come back through their callbacks.
    out.once("close", () => {
      if (!stopped) {
        stopped = true;
        reject(new Error("the connection closed before the file was sent"));
      }
      closeFile();
      for (const b of free.splice(0)) buffers.give(b);
    });
    fill();
  });
}
