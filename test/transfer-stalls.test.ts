// A registry that stops sending in the middle of a range without closing the connection: TCP
// would wait for hours, the daemon's stall watchdog cuts the part off after the stall timeout and
// the retry fetches the rest. A registry that sends a part slowly but steadily, each pause far
// shorter than the timeout and the whole part far longer, is not cut off. The timeout is lowered
// (CORRAL_TRANSFER_STALL_TIMEOUT) so the tests take seconds, not Ollama's 30. Two pulls of one
// model at once share one download of each blob, and both finish; one of them cancelled, the other
// still does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { startDaemon, runCLI, debugEvents, type Daemon } from "./helpers/daemon.ts";
import { waitFor } from "./helpers/faults.ts";
import { MANIFEST_TYPE, model, sendRange, site, type Model } from "./helpers/fake-registry.ts";

/** 128 KiB parts, two at a time: a 2 MiB layer is sixteen ranges. */
const PARTS = { CORRAL_TRANSFER_PART_MIN: String(128 << 10), CORRAL_TRANSFER_CONCURRENCY: "2" };

/** A registry serving one model; `layerRange` answers the layer's ranged GETs. */
async function registryOf(m: Model, layerRange: (req: IncomingMessage, res: ServerResponse, start: number) => void) {
  return site((req, res, url) => {
    if (url.pathname === "/v2/") return res.writeHead(200).end();
    if (url.pathname === "/v2/team/story/manifests/latest") return res.writeHead(200, { "Content-Type": MANIFEST_TYPE, "Content-Length": m.manifest.length }).end(m.manifest);
    if (url.pathname === `/v2/team/story/blobs/${m.config.digest}`) return sendRange(req, res, m.config);
    if (url.pathname === `/v2/team/story/blobs/${m.layer.digest}`) return layerRange(req, res, Number(/^bytes=(\d+)-/.exec(req.headers.range ?? "")?.[1] ?? 0));
    res.writeHead(404).end();
  });
}

/** The ranged GETs of the layer the registry saw, by the offset each started at. */
function rangeStarts(reqs: IncomingMessage[], m: Model): number[] {
  return reqs.filter((r) => r.url?.endsWith(m.layer.digest)).map((r) => Number(/^bytes=(\d+)-/.exec(r.headers.range ?? "")?.[1] ?? 0));
}

async function pulledLayer(d: Daemon, m: Model): Promise<Buffer> {
  return readFile(join(d.modelsDir, "blobs", m.layer.digest.replace(":", "-")));
}

test("a range that stops arriving without the connection closing is cut off after the stall timeout and fetched again", async () => {
  const m = model(2 << 20);
  const stallAt = 5 * (128 << 10);
  const reqs: IncomingMessage[] = [];
  let held: ServerResponse | undefined;
  const r = await registryOf(m, (req, res, start) => {
    reqs.push(req);
    if (start !== stallAt || held) return void sendRange(req, res, m.layer);
    // The first request for this part: half of it, then nothing, the connection left open.
    held = res;
    const end = start + (128 << 10) - 1;
    res.writeHead(206, { "Content-Length": end - start + 1, "Content-Range": `bytes ${start}-${end}/${m.layer.size}` });
    res.write(m.layer.bytes.subarray(start, start + (64 << 10)));
  });
  const d = await startDaemon({ env: { ...PARTS, CORRAL_TRANSFER_STALL_TIMEOUT: "0.5" } });
  try {
    const pulled = await runCLI(d, ["pull", `${r.host}/team/story`, "--insecure"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok(held, "the stalling range was asked for");
    assert.ok((await pulledLayer(d, m)).equals(m.layer.bytes), "the layer arrived whole");
    const starts = rangeStarts(reqs, m);
    // The retry may begin past the bytes of the stalled answer that already reached the file.
    const inStalledPart = (s: number): boolean => s >= stallAt && s < stallAt + (128 << 10);
    assert.equal(starts.filter(inStalledPart).length, 2, `the stalled part was asked for again, once: ${starts.join(",")}`);
    const others = starts.filter((s) => !inStalledPart(s));
    assert.equal(others.length, 15, `every other part was asked for once: ${starts.join(",")}`);
    assert.equal(new Set(others).size, 15, `every other part was asked for once: ${starts.join(",")}`);
    assert.ok(held.closed || held.destroyed || held.socket === null || held.socket.destroyed, "the daemon closed the stalled connection");
    assert.deepEqual((await readdir(join(d.modelsDir, "blobs"))).filter((n) => n.includes("partial")), [], "no part files are left");
  } finally {
    await d.stop();
    await r.close();
  }
});

test("a range sent slowly but steadily, each pause well within the stall timeout, is not cut off", async () => {
  const m = model(2 << 20);
  const slowAt = 3 * (128 << 10);
  const pieces = 12;
  const reqs: IncomingMessage[] = [];
  const r = await registryOf(m, (req, res, start) => {
    reqs.push(req);
    if (start !== slowAt) return void sendRange(req, res, m.layer);
    // The part in twelve pieces a quarter of the timeout apart: three timeouts in all.
    const end = start + (128 << 10) - 1;
    res.writeHead(206, { "Content-Length": end - start + 1, "Content-Range": `bytes ${start}-${end}/${m.layer.size}` });
    const piece = (128 << 10) / pieces;
    let i = 0;
    const next = (): void => {
      const from = start + Math.round(i * piece);
      const to = i === pieces - 1 ? end + 1 : start + Math.round((i + 1) * piece);
      i++;
      if (i === pieces) return void res.end(m.layer.bytes.subarray(from, to));
      res.write(m.layer.bytes.subarray(from, to));
      setTimeout(next, 500);
    };
    next();
  });
  const d = await startDaemon({ env: { ...PARTS, CORRAL_TRANSFER_STALL_TIMEOUT: "2" } });
  try {
    const pulled = await runCLI(d, ["pull", `${r.host}/team/story`, "--insecure"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok((await pulledLayer(d, m)).equals(m.layer.bytes), "the layer arrived whole");
    const starts = rangeStarts(reqs, m);
    assert.equal(starts.filter((s) => s === slowAt).length, 1, `the slow part was asked for once: ${starts.join(",")}`);
    assert.equal(starts.length, 16, "no part was asked for twice");
  } finally {
    await d.stop();
    await r.close();
  }
});

/**
 * A registry whose layer ranges are all held until `release()`, and a daemon that logs debug
 * events (which tell when a pull joins or leaves a download).
 */
async function heldRanges(m: Model) {
  const reqs: IncomingMessage[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const r = await registryOf(m, (req, res) => {
    reqs.push(req);
    void released.then(() => sendRange(req, res, m.layer));
  });
  const d = await startDaemon({ env: { ...PARTS, CORRAL_DEBUG: "1" } }).catch(async (e: unknown) => {
    await r.close();
    throw e;
  });
  return { r, d, reqs, release };
}

test("two pulls of one model at once download the layer once, and both finish", async () => {
  const m = model(2 << 20);
  // The layer's ranges are held until the second pull has joined the first one's download.
  const { r, d, reqs, release } = await heldRanges(m);
  try {
    const first = runCLI(d, ["pull", `${r.host}/team/story`, "--insecure"]);
    await waitFor("the first pull's first range", () => rangeStarts(reqs, m).length > 0, { during: { "the first pull": first } });
    let secondDone = false;
    const second = runCLI(d, ["pull", `${r.host}/team/story`, "--insecure"]).finally(() => (secondDone = true));
    // Joined, or (when the download is not shared) more ranges than one download's two at a time.
    const joined = (): boolean => debugEvents(d).some((e) => e.msg === "pull joins a download under way" && e["digest"] === m.layer.digest);
    await waitFor("the second pull to join the download", () => joined() || rangeStarts(reqs, m).length > 2 || secondDone);
    assert.ok(joined(), `the second pull joined the download (ranges asked for: ${rangeStarts(reqs, m).length})`);
    release();
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout + b.stderr, /success/);
    const starts = rangeStarts(reqs, m);
    assert.equal(starts.length, 16, `each part was asked for once: ${starts.join(",")}`);
    assert.equal(new Set(starts).size, 16, `each part was asked for once: ${starts.join(",")}`);
    assert.ok((await pulledLayer(d, m)).equals(m.layer.bytes), "the layer arrived whole");
  } finally {
    release();
    await d.stop();
    await r.close();
  }
});

test("a pull cancelled while another waits for the same download does not stop it", async () => {
  const m = model(2 << 20);
  const { r, d, reqs, release } = await heldRanges(m);
  const leaving = new AbortController();
  try {
    // The first pull through the API, so that it can be cancelled by leaving.
    const first = fetch(`${d.url}/api/pull`, { method: "POST", body: JSON.stringify({ model: `${r.host}/team/story`, insecure: true }), signal: leaving.signal });
    await waitFor("the first pull's first range", () => rangeStarts(reqs, m).length > 0);
    const second = runCLI(d, ["pull", `${r.host}/team/story`, "--insecure"]);
    const logged = (msg: string): boolean => debugEvents(d).some((e) => e.msg === msg && e["digest"] === m.layer.digest);
    await waitFor("the second pull to join the download", () => logged("pull joins a download under way"), { during: { "the second pull": second } });
    leaving.abort();
    await first.then((res) => res.body?.cancel()).catch(() => undefined);
    await waitFor("the first pull to leave the download", () => logged("pull leaves a download"));
    release();
    const b = await second;
    assert.equal(b.code, 0, b.stderr);
    const starts = rangeStarts(reqs, m);
    assert.equal(new Set(starts).size, 16, `every part arrived: ${starts.join(",")}`);
    assert.ok((await pulledLayer(d, m)).equals(m.layer.bytes), "the layer arrived whole");
  } finally {
    release();
    await d.stop();
    await r.close();
  }
});
