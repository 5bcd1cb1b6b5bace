// The least a registry written in Node must do with an upload, timed on its own: Node's http
// module receiving the file over loopback from another Node process and hashing it with sha256 on
// the receiving thread, with nothing written to disk and nothing else in the way. Corral's registry
// does this and also writes every byte durably, so a push cannot be faster than this and the
// durable write (`dd`) overlapped perfectly; bench/transfer.ts runs it beside them in every round.
//   node --import tsx bench/lib/http-hash-floor.ts serve            prints its port, then serves
//   node --import tsx bench/lib/http-hash-floor.ts send PORT FILE DIGEST
//                                                                  prints the seconds the upload took
import { createServer, request } from "node:http";
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";

async function serve(): Promise<void> {
  const server = createServer((req, res) => {
    const hash = createHash("sha256");
    req.on("data", (chunk: Buffer) => hash.update(chunk));
    req.on("end", () => res.end(`sha256:${hash.digest("hex")}`));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no port");
  console.log(address.port);
}

/** Sends `path` as one PUT body, reading it a megabyte at a time into two reused buffers. */
async function send(port: number, path: string, digest: string): Promise<void> {
  const file = await open(path);
  const size = (await file.stat()).size;
  const started = performance.now();
  const req = request({ host: "127.0.0.1", port, method: "PUT", path: "/", headers: { "content-length": size } });
  const answer = new Promise<string>((resolve, reject) => {
    req.on("error", reject);
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
      res.on("error", reject);
    });
  });
  // A buffer is read into again only once its write was taken: `write` returning false is waited
  // out until "drain", when everything queued has gone to the socket.
  const buffers = [Buffer.allocUnsafe(1 << 20), Buffer.allocUnsafe(1 << 20)];
  for (let at = 0, i = 0; at < size; i++) {
    const buf = buffers[i % 2]!;
    const { bytesRead } = await file.read(buf, 0, buf.length, at);
    if (bytesRead === 0) throw new Error(`${path} ended early`);
    at += bytesRead;
    if (!req.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead))) await new Promise((r) => req.once("drain", r));
  }
  req.end();
  const got = await answer;
  const seconds = (performance.now() - started) / 1000;
  await file.close();
  if (got !== digest) throw new Error(`the receiver hashed ${got}, expected ${digest}`);
  console.log(seconds.toFixed(3));
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "serve") await serve();
else if (mode === "send" && rest.length === 3) await send(Number(rest[0]), rest[1]!, rest[2]!);
else throw new Error("usage: http-hash-floor.ts serve | send PORT FILE DIGEST");
