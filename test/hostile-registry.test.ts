// A hostile registry against a real daemon. The registry a model names may send the daemon to
// another registry (an upload Location, a blob or manifest redirect): the daemon must not sign a
// token request for that other registry, nor carry either registry's token to the other. It may
// send a manifest of any length without saying how long, or declare a layer larger than the disk;
// it may fail a layer after some bytes. The daemon stops reading at its limits, refuses what does
// not fit before writing anything, and removes what a failed download left unless resuming can
// finish it. The registries here are small node:http servers written for the test.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readdir, readFile, rm, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePublicKeyLine, parseSignedAuthorization, verifyTokenRequest } from "@corral/shared/signing";
import { startDaemon, runCLI, type CLIResult, type Daemon } from "./helpers/daemon.ts";
import { fixtures } from "./fixtures.ts";
import { writable } from "./helpers/http.ts";
import { MANIFEST_TYPE, blobOf, challenge, drain, json, manifestOf, model, sendRange, site, type Site } from "./helpers/fake-registry.ts";

/** Small parts, two at a time, so a 2 MiB layer is fetched in sixteen ranges. */
const PULL_ENV = { CORRAL_TRANSFER_PART_MIN: String(128 << 10), CORRAL_TRANSFER_CONCURRENCY: "2" };

/** What a pull left in the blobs folder besides blobs: part data, part states, temporary files. */
async function leftovers(d: Daemon): Promise<string[]> {
  return (await readdir(join(d.modelsDir, "blobs")).catch(() => [] as string[])).filter((n) => !/^sha256-[0-9a-f]{64}$/.test(n));
}

async function blobFiles(d: Daemon): Promise<string[]> {
  return readdir(join(d.modelsDir, "blobs")).catch(() => [] as string[]);
}

function errorLine(r: CLIResult): string {
  return r.stderr.split("\n").find((l) => l.startsWith("Error: ")) ?? r.stderr;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The daemon's resident set (VmRSS) or its peak (VmHWM), in bytes. */
async function memory(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
  assert.ok(kb, `${field} in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

const hasProc = await readFile("/proc/self/status", "utf8").then(
  () => true,
  () => false,
);

const H_TOKEN = "token-of-the-hostile-registry";
const T_TOKEN = "token-of-the-team-registry";

/**
 * The team registry T the hostile one sends the daemon to: it asks for credentials, and gives its
 * token only to a token request signed with the daemon's key. With its token it would accept
 * anything, sending an upload back to H.
 */
async function teamRegistry(daemonHome: string, back: () => string): Promise<Site & { issued: () => number; tokenRequests: () => number }> {
  const key = parsePublicKeyLine(await readFile(join(daemonHome, ".corral", "id_ed25519.pub"), "utf8"));
  let issued = 0;
  let tokenRequests = 0;
  const t: Site = await site(async (req, res, url) => {
    await drain(req);
    if (url.pathname === "/token") {
      tokenRequests++;
      try {
        const auth = parseSignedAuthorization(req.headers.authorization ?? "");
        if (Buffer.from(auth.publicKey).equals(Buffer.from(key.publicKey)) && verifyTokenRequest(`http://${t.host}${req.url}`, auth)) {
          issued++;
          return json(res, 200, { token: T_TOKEN });
        }
      } catch {
        // unsigned or badly signed: no token
      }
      return json(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "bad signature" }] });
    }
    if (req.headers.authorization === `Bearer ${T_TOKEN}`) {
      return res.writeHead(202, { Location: `http://${back()}/v2/team/story/blobs/uploads/back` }).end();
    }
    challenge(res, t.host, "team/private");
  });
  return Object.assign(t, { issued: () => issued, tokenRequests: () => tokenRequests });
}

// One test at a time: each starts its own daemon, and the machine may be busy.
describe("a hostile registry", () => {
  test("push: an upload sent to another registry that asks for credentials is not signed for, and no token crosses between them", async () => {
    const daemon = await startDaemon();
    const work = await mkdtemp(join(tmpdir(), "corral-hostile-push-"));
    let h: Site | undefined;
    const t = await teamRegistry(daemon.home, () => h!.host);
    try {
      h = await site(async (req, res, url) => {
        await drain(req);
        if (url.pathname === "/token") return json(res, 200, { token: H_TOKEN });
        if (req.headers.authorization !== `Bearer ${H_TOKEN}`) return challenge(res, h!.host, "team/story");
        if (req.method === "HEAD") return res.writeHead(404).end();
        if (req.method === "POST" && url.pathname.endsWith("/blobs/uploads/")) {
          return res.writeHead(202, { Location: `http://${t.host}/v2/team/private/blobs/uploads/u1` }).end();
        }
        if (req.method === "PATCH") return res.writeHead(202, { Location: `http://${h!.host}${url.pathname}` }).end();
        res.writeHead(201).end();
      });
      await copyFile(fixtures.stories260K, join(work, "story.gguf"));
      await writeFile(join(work, "Modelfile"), "FROM ./story.gguf\nTEMPLATE {{ .Prompt }}\n");
      const name = `${h.host}/team/story`;
      const created = await runCLI(daemon, ["create", name, "-f", join(work, "Modelfile")]);
      assert.equal(created.code, 0, created.stderr);

      const r = await runCLI(daemon, ["push", name, "--insecure"]);
      assert.ok(h.seen.some((s) => s.path === "/token"), "the daemon still signs for the registry the model names");
      assert.equal(t.tokenRequests(), 0, "the daemon sent a token request to a registry the model does not name");
      assert.equal(t.issued(), 0, "the team registry issued its token to the daemon");
      assert.deepEqual(h.seen.filter((s) => s.authorization?.includes(T_TOKEN)), [], "the team registry's token reached the hostile one");
      assert.deepEqual(t.seen.filter((s) => s.authorization?.includes(H_TOKEN)), [], "the hostile registry's token reached the team registry");
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(errorLine(r), new RegExp(`registry ${escape(h.host)} sent this request to ${escape(t.host)}, which asks for credentials; Corral signs token requests only for ${escape(h.host)}`));
    } finally {
      await daemon.stop();
      await h?.close();
      await t.close();
      await rm(work, { recursive: true, force: true });
    }
  });

  test("pull: a blob or manifest redirected to another registry that asks for credentials fails at once, unsigned and without the registry's token", async () => {
    const daemon = await startDaemon({ env: PULL_ENV });
    // One part per blob, so that a GET per blob means no retries.
    const m = model(64 << 10);
    let h: Site | undefined;
    const t = await teamRegistry(daemon.home, () => h!.host);
    try {
      h = await site(async (req, res, url) => {
        await drain(req);
        if (url.pathname === "/token") return json(res, 200, { token: H_TOKEN });
        if (req.headers.authorization !== `Bearer ${H_TOKEN}`) return challenge(res, h!.host, "team/story");
        if (url.pathname === "/v2/team/story/manifests/latest") {
          return res.writeHead(200, { "Content-Type": MANIFEST_TYPE, "Content-Length": m.manifest.length }).end(m.manifest);
        }
        if (url.pathname === "/v2/team/story/manifests/moved") {
          return res.writeHead(307, { Location: `http://${t.host}/v2/team/private/manifests/latest` }).end();
        }
        const blob = /^\/v2\/team\/story\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
        const b = [m.config, m.layer].find((x) => x.digest === blob);
        if (!b) return res.writeHead(404).end();
        if (req.method === "HEAD") return res.writeHead(200, { "Content-Length": b.size }).end();
        res.writeHead(307, { Location: `http://${t.host}/v2/team/private/blobs/${b.digest}` }).end();
      });

      const r = await runCLI(daemon, ["pull", `${h.host}/team/story`, "--insecure"]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(errorLine(r), new RegExp(`registry ${escape(h.host)} sent this request to ${escape(t.host)}, which asks for credentials; Corral signs token requests only for ${escape(h.host)}`));
      // One GET per blob: a demand for credentials from elsewhere is not worth a retry.
      const blobGets = t.seen.filter((s) => s.method === "GET" && s.path.includes("/blobs/"));
      assert.ok(blobGets.length >= 1 && blobGets.length <= 2, `${blobGets.length} GETs of blobs reached the team registry`);
      assert.deepEqual(await leftovers(daemon), [], "nothing of the failed download is left");

      const moved = await runCLI(daemon, ["pull", `${h.host}/team/story:moved`, "--insecure"]);
      assert.equal(moved.code, 1, moved.stdout + moved.stderr);
      assert.match(errorLine(moved), new RegExp(`registry ${escape(h.host)} sent this request to ${escape(t.host)}, which asks for credentials`));

      assert.equal(t.tokenRequests(), 0, "the daemon sent a token request to a registry the model does not name");
      assert.deepEqual(t.seen.filter((s) => s.authorization !== undefined), [], "credentials reached the team registry");
    } finally {
      await daemon.stop();
      await h?.close();
      await t.close();
    }
  });

  test("a manifest streamed without a length is cut off at the limit, and the daemon's memory stays small", { skip: !hasProc && "needs /proc" }, async () => {
    const daemon = await startDaemon();
    const body = 256 << 20;
    let sent = 0;
    const chunk = Buffer.alloc(1 << 20, " ");
    const h = await site(async (req, res, url) => {
      await drain(req);
      if (url.pathname !== "/v2/team/story/manifests/latest") return res.writeHead(404).end();
      // No Content-Length: chunked, as long as the daemon keeps reading.
      res.writeHead(200, { "Content-Type": MANIFEST_TYPE });
      while (sent < body && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) await writable(res);
      }
      res.end();
    });
    try {
      // A first pull loads the code a pull runs, so that the measurement sees only the manifest.
      const warm = await runCLI(daemon, ["pull", `${h.host}/team/story:missing`, "--insecure"]);
      assert.equal(warm.code, 1);
      const pid = daemon.process.pid!;
      const before = await memory(pid, "VmRSS");
      // Resets the peak (VmHWM) to the current resident set.
      await writeFile(`/proc/${pid}/clear_refs`, "5");
      const r = await runCLI(daemon, ["pull", `${h.host}/team/story`, "--insecure"]);
      const peak = await memory(pid, "VmHWM");
      assert.ok(peak - before < 64 << 20, `the daemon's resident set grew by ${((peak - before) / 2 ** 20).toFixed(0)} MiB reading a ${body >> 20} MiB manifest`);
      assert.ok(sent < body, "the daemon read the whole body");
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(errorLine(r), /pull model manifest: the registry sent a manifest of more than 4194304 bytes/);
    } finally {
      await daemon.stop();
      await h.close();
    }
  });

  test("a manifest declaring more bytes than the disk has free fails before anything is written; insane sizes are refused", async () => {
    const daemon = await startDaemon({ env: PULL_ENV });
    const free = await statfs(daemon.modelsDir).then((s) => s.bavail * s.bsize);
    // A terabyte, or twice the free space where a terabyte would fit.
    const claimed = Math.max(2 ** 40, 2 * free);
    const config = blobOf(Buffer.from("{}"));
    const fake = { digest: `sha256:${randomBytes(32).toString("hex")}`, size: claimed };
    const manifests: Record<string, Buffer> = {
      latest: manifestOf(config, [fake]),
      negative: manifestOf(config, [{ ...fake, size: -1 }]),
      unsafe: manifestOf(config, [{ ...fake, size: 2 ** 53 }]),
    };
    const h = await site(async (req, res, url) => {
      await drain(req);
      const tag = /^\/v2\/team\/story\/manifests\/(\w+)$/.exec(url.pathname)?.[1];
      const manifest = tag ? manifests[tag] : undefined;
      if (manifest) return res.writeHead(200, { "Content-Type": MANIFEST_TYPE, "Content-Length": manifest.length }).end(manifest);
      if (url.pathname === `/v2/team/story/blobs/${fake.digest}`) return res.writeHead(req.method === "HEAD" ? 200 : 500, { "Content-Length": claimed }).end();
      if (url.pathname === `/v2/team/story/blobs/${config.digest}`) return sendRange(req, res, config);
      res.writeHead(404).end();
    });
    try {
      const r = await runCLI(daemon, ["pull", `${h.host}/team/story`, "--insecure"]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(errorLine(r), new RegExp(`no space left on device for pulling ${escape(h.host)}/team/story:latest: its missing blobs need .+ and .+ has .+ free`));
      assert.deepEqual(h.seen.filter((s) => s.path.includes("/blobs/")), [], "no blob was asked for");
      assert.deepEqual(await blobFiles(daemon), [], "nothing was written");

      for (const tag of ["negative", "unsafe"]) {
        const bad = await runCLI(daemon, ["pull", `${h.host}/team/story:${tag}`, "--insecure"]);
        assert.equal(bad.code, 1, bad.stdout + bad.stderr);
        assert.match(errorLine(bad), /manifest\.layers\[0\]\.size: expected a non-negative integer/);
      }
      assert.deepEqual(await blobFiles(daemon), [], "nothing was written");
    } finally {
      await daemon.stop();
      await h.close();
    }
  });

  for (const status of [400, 500]) {
    test(`a layer the registry fails with ${status} after some bytes leaves no part or state files`, async () => {
      const daemon = await startDaemon({ env: PULL_ENV });
      const m = model(2 << 20);
      let served = 0;
      let refused = 0;
      const h = await site(async (req, res, url) => {
        await drain(req);
        if (url.pathname === "/v2/team/story/manifests/latest") {
          return res.writeHead(200, { "Content-Type": MANIFEST_TYPE, "Content-Length": m.manifest.length }).end(m.manifest);
        }
        const b = [m.config, m.layer].find((x) => url.pathname === `/v2/team/story/blobs/${x.digest}`);
        if (!b) return res.writeHead(404).end();
        if (req.method === "HEAD") return res.writeHead(200, { "Content-Length": b.size }).end();
        // The GET without a Range is the daemon asking where the bytes are; it reads none of them.
        if (b === m.config || !req.headers.range || served < 3) {
          if (b === m.layer && req.headers.range) served++;
          return sendRange(req, res, b);
        }
        refused++;
        json(res, status, { errors: [{ code: "UNKNOWN", message: "the registry gives up" }] });
      });
      try {
        const r = await runCLI(daemon, ["pull", `${h.host}/team/story`, "--insecure"]);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(errorLine(r), new RegExp(`${status}`));
        assert.equal(served, 3, "the layer's first parts arrived");
        assert.ok(refused >= 1);
        assert.deepEqual(await leftovers(daemon), [], "the failed download's part and state files are gone");
        assert.deepEqual(await blobFiles(daemon), [], "nothing of the failed pull is left");
      } finally {
        await daemon.stop();
        await h.close();
      }
    });
  }

  test("a connection cut mid-download keeps the parts, and the next pull resumes from them", async () => {
    const daemon = await startDaemon({ env: PULL_ENV });
    const m = model(2 << 20);
    let cutting = true;
    let served = 0;
    let layerBytes = 0;
    const h = await site(async (req, res, url) => {
      await drain(req);
      if (url.pathname === "/v2/team/story/manifests/latest") {
        return res.writeHead(200, { "Content-Type": MANIFEST_TYPE, "Content-Length": m.manifest.length }).end(m.manifest);
      }
      const b = [m.config, m.layer].find((x) => url.pathname === `/v2/team/story/blobs/${x.digest}`);
      if (!b) return res.writeHead(404).end();
      if (req.method === "HEAD") return res.writeHead(200, { "Content-Length": b.size }).end();
      if (b === m.config || !req.headers.range) return sendRange(req, res, b);
      if (!cutting || served < 3) {
        served++;
        layerBytes += sendRange(req, res, b);
        return;
      }
      // A few bytes of the range, then the connection drops.
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "")!;
      const start = Number(range[1]);
      const end = Number(range[2]);
      res.writeHead(206, { "Content-Length": end - start + 1, "Content-Range": `bytes ${start}-${end}/${b.size}` });
      res.write(b.bytes.subarray(start, start + 1000), () => res.socket?.destroy());
    });
    try {
      const first = await runCLI(daemon, ["pull", `${h.host}/team/story`, "--insecure"]);
      assert.equal(first.code, 1, first.stdout + first.stderr);
      const hex = m.layer.digest.slice("sha256:".length);
      const kept = await leftovers(daemon);
      assert.ok(kept.includes(`sha256-${hex}-partial`), `the part data is kept: ${kept.join(", ")}`);
      assert.ok(kept.some((n) => n.startsWith(`sha256-${hex}-partial-`)), `the part states are kept: ${kept.join(", ")}`);

      cutting = false;
      layerBytes = 0;
      const again = await runCLI(daemon, ["pull", `${h.host}/team/story`, "--insecure"]);
      assert.equal(again.code, 0, again.stderr);
      assert.ok(layerBytes <= m.layer.size - 3 * (128 << 10), `the second pull fetched ${layerBytes} of ${m.layer.size} bytes: it resumed`);
      assert.deepEqual(await readFile(join(daemon.modelsDir, "blobs", `sha256-${hex}`)), m.layer.bytes);
      assert.deepEqual(await leftovers(daemon), []);
    } finally {
      await daemon.stop();
      await h.close();
    }
  });
});
