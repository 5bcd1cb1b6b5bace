// A registry (or the object storage it redirects to) that answers ranged GETs without a
// Content-Length, chunked: the daemon's own plain-HTTP reader cannot frame those, and the download
// thread fetches them again through node:http. Bytes from either reader go to the file the same
// way (slab-writer.ts: page-aligned megabytes, the hash window), so the layer arrives whole and
// verified whichever answered, with parts that start off a page and some that span megabytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, runCLI } from "./helpers/daemon.ts";
import { MANIFEST_TYPE, model, sendRange, site } from "./helpers/fake-registry.ts";

// Parts of 1.5 MiB plus a byte: each starts off a page boundary and fills more than one megabyte.
const PART = (3 << 19) + 1;

test("ranges answered chunked, without a length, are fetched through node:http and arrive whole", async () => {
  // Larger than the hashing thread's floor (64 MiB), so the hash window is in use.
  const m = model(70 << 20);
  let chunked = 0;
  const r = await site((req, res, url) => {
    if (url.pathname === "/v2/") return res.writeHead(200).end();
    if (url.pathname === "/v2/team/story/manifests/latest") return res.writeHead(200, { "Content-Type": MANIFEST_TYPE, "Content-Length": m.manifest.length }).end(m.manifest);
    if (url.pathname === `/v2/team/story/blobs/${m.config.digest}`) return sendRange(req, res, m.config);
    if (url.pathname !== `/v2/team/story/blobs/${m.layer.digest}`) return res.writeHead(404).end();
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (!range) return res.writeHead(416).end();
    const start = Number(range[1]);
    const end = Math.min(Number(range[2]), m.layer.size - 1);
    chunked++;
    // No Content-Length: Node frames the body chunked, in pieces of odd sizes.
    res.writeHead(206, { "Content-Range": `bytes ${start}-${end}/${m.layer.size}` });
    for (let at = start; at <= end; at += 100_003) res.write(m.layer.bytes.subarray(at, Math.min(at + 100_003, end + 1)));
    res.end();
  });
  const d = await startDaemon({ env: { CORRAL_TRANSFER_PART_MIN: String(PART), CORRAL_TRANSFER_CONCURRENCY: "4" } });
  try {
    const pulled = await runCLI(d, ["pull", `${r.host}/team/story`, "--insecure"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok(chunked >= Math.ceil(m.layer.size / PART), `every part was answered chunked (${chunked})`);
    assert.ok((await readFile(join(d.modelsDir, "blobs", m.layer.digest.replace(":", "-")))).equals(m.layer.bytes), "the layer arrived whole");
    assert.deepEqual((await readdir(join(d.modelsDir, "blobs"))).filter((n) => n.includes("partial")), [], "no part files are left");
  } finally {
    await d.stop();
    await r.close();
  }
});
