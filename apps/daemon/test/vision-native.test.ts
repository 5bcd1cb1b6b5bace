// The native image path on its own, before any HTTP: libmtmd built from node-llama-cpp's llama.cpp
// source (build-mtmd.mjs), loaded in the vision worker through koffi, evaluating a prompt with a
// PNG made here through a random-weight projector into stories260K. Checks that an image becomes
// the projector's tokens and steers the greedy answer the same way every time, that bad images
// are refused with a 400 that names the problem while the worker goes on, that an answer can be
// stopped between tokens with the worker kept, and that a worker that dies mid-answer is an
// error, not a crash.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixtures } from "../../../test/fixtures.ts";
import { writeRandomProjector } from "../../../test/helpers/random-projector.ts";
import { encodePNG, pngClaiming } from "../../../test/helpers/png.ts";
import { fileURLToPath } from "node:url";
import { buildVision } from "../src/runner/vision/build-mtmd.mjs";
import { VisionWorker, type VisionGenerateRequest } from "../src/runner/vision/vision-worker.ts";
import { StatusError } from "../src/errors.ts";

let work: string;
let projector: string;
let tokensPerImage: number;
let worker: VisionWorker | undefined;
let skip: string | false = false;

const red = encodePNG(48, 40, (x, y) => [200, (x * 5) % 256, (y * 3) % 256]);
const blue = encodePNG(48, 40, (x, y) => [(y * 6) % 256, 40, 220 - x]);

before(async () => {
  const built = await buildVision();
  // Without the tools the library cannot exist; any other failure is a failure.
  if (!built.ok && /is not installed|only on linux-x64/.test(built.reason)) skip = built.reason;
  else assert.ok(built.ok, built.ok ? "" : built.reason);
  work = await mkdtemp(join(tmpdir(), "corral-vision-"));
  projector = join(work, "mmproj.gguf");
  tokensPerImage = await writeRandomProjector(projector, { textEmbd: 64 });
  if (skip) return;
  worker = await VisionWorker.start();
  await worker.open({ model: fixtures.stories260K, projector, ctx: 512, batch: 512, threads: 1 });
});

after(async () => {
  worker?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function answer(prompt: string, images: Uint8Array[], w = worker!): Promise<{ text: string; promptTokens: number }> {
  const req: VisionGenerateRequest = { prompt, images, maxPixels: 4096 * 4096, maxTokens: 16 };
  let text = "";
  const r = await w.generate(req, (t) => (text += t));
  return { text, promptTokens: r.promptTokens };
}

test("an image becomes the projector's tokens and steers the greedy answer, the same way every time", { skip }, async () => {
  const m = worker!.marker;
  const plain = await answer("Once upon a time", []);
  const withRed = await answer(`${m}Once upon a time`, [red]);
  const again = await answer(`${m}Once upon a time`, [red]);
  const withBlue = await answer(`${m}Once upon a time`, [blue]);
  assert.equal(withRed.promptTokens, plain.promptTokens + tokensPerImage);
  assert.equal(withBlue.promptTokens, withRed.promptTokens);
  assert.ok(withRed.text.length > 0);
  assert.equal(again.text, withRed.text, "same image, same greedy answer");
  assert.notEqual(withBlue.text, withRed.text, "another image, another answer");
  assert.notEqual(withRed.text, plain.text, "the image changes the answer");
});

test("bad images get a 400 naming the problem, and the worker answers the next request", { skip }, async () => {
  const m = worker!.marker;
  const refused = async (images: Uint8Array[], prompt: string, pattern: RegExp): Promise<void> => {
    await assert.rejects(answer(prompt, images), (e: unknown) => {
      assert.ok(e instanceof StatusError, String(e));
      assert.equal(e.status, 400);
      assert.match(e.message, pattern);
      return true;
    });
  };
  await refused([Buffer.from("this is not a picture")], `${m}hi`, /image 1 is not a PNG, JPEG, GIF or BMP picture/);
  await refused([red.subarray(0, Math.floor(red.length / 2))], `${m}hi`, /image 1 cannot be decoded/);
  await refused([pngClaiming(10_000, 10_000)], `${m}hi`, /image 1 is 10000x10000 pixels, more than the 16777216 allowed/);
  await refused([red, pngClaiming(100_000, 100_000)], `${m}a${m}b`, /image 2 is too large: more than the 16777216 pixels allowed/);
  await refused([red, blue], `${m}hi`, /1 image markers but 2 images/);
  await refused([red], "no marker here", /0 image markers but 1 images/);
  const ok = await answer(`${m}Once upon a time`, [red]);
  assert.ok(ok.text.length > 0);
});

test("stop() ends an answer between two tokens and the same worker answers the next request", { skip }, async () => {
  const w = worker!;
  const pid = w.pid!;
  const m = w.marker;
  const expected = await answer(`${m}Once upon a time`, [red]);
  const req: VisionGenerateRequest = { prompt: `${m}Once upon a time`, images: [blue], maxPixels: 1 << 24, maxTokens: 400 };
  // The worker is paused while the request and its stop are written, so that it finds both when
  // it goes on and must stop before its first token, however fast it would have answered.
  process.kill(pid, "SIGSTOP");
  let r: Awaited<ReturnType<VisionWorker["generate"]>>;
  try {
    const pending = w.generate(req, () => undefined);
    w.stop();
    process.kill(pid, "SIGCONT");
    r = await pending;
  } finally {
    process.kill(pid, "SIGCONT");
  }
  assert.equal(r.reason, "stopped");
  assert.equal(r.evalCount, 0);
  // A stop with nothing under way is nothing, and a late one does not reach the next request.
  w.stop();
  assert.equal((await answer(`${m}Once upon a time`, [red])).text, expected.text);
  assert.equal(w.killed, false);
  assert.equal(w.pid, pid);
});

test("a worker that dies during an answer is a 500 for that request, not a crash", { skip }, async () => {
  const w = await VisionWorker.start();
  await w.open({ model: fixtures.stories260K, projector, ctx: 512, batch: 512, threads: 1 });
  const req: VisionGenerateRequest = { prompt: `${w.marker}Once upon a time`, images: [red], maxPixels: 1 << 24, maxTokens: 400 };
  await assert.rejects(
    w.generate(req, () => w.kill()),
    (e: unknown) => e instanceof StatusError && e.status === 500 && /the vision runner stopped/.test(e.message),
  );
});

test("a model file the worker cannot load is an error naming it", { skip }, async () => {
  const w = await VisionWorker.start();
  try {
    await assert.rejects(w.open({ model: join(work, "missing.gguf"), projector }), (e: unknown) => e instanceof StatusError && /cannot load the model/.test(e.message));
    await assert.rejects(w.open({ model: fixtures.stories260K, projector: fixtures.stories260K }), (e: unknown) => e instanceof StatusError && /cannot load the projector/.test(e.message));
  } finally {
    w.close();
  }
});

test("without cmake the build says so in one line and the daemon's vision worker says why images are off", async () => {
  // A PATH holding only node: no git, no cmake, no compiler.
  const bin = join(work, "bin-node-only");
  await mkdir(bin);
  await symlink(process.execPath, join(bin, "node"));
  const env = { ...process.env, PATH: bin, CORRAL_VISION_DIR: join(work, "no-build") };
  const script = fileURLToPath(new URL("../src/runner/vision/build-mtmd.mjs", import.meta.url));
  const build = spawnSync(process.execPath, [script], { env, encoding: "utf8" });
  assert.equal(build.status, 0, "a missing compiler never fails the build");
  const lines = build.stderr.trim().split("\n").filter((l) => !l.endsWith("…"));
  assert.equal(lines.length, 1, build.stderr);
  assert.match(lines[0]!, /^corral: image input is off: git \(to unpack node-llama-cpp's llama\.cpp source\) is not installed; text models work as before; to enable images install git, cmake and a C\+\+ compiler/);

  const child = fileURLToPath(new URL("../src/runner/vision/vision-child.mjs", import.meta.url));
  const r = spawnSync(process.execPath, [child], { env, encoding: "utf8", input: "" });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, "", "no stack trace");
  const msg = JSON.parse(r.stdout.trim()) as { error: string; unavailable: boolean };
  assert.equal(msg.unavailable, true);
  assert.match(msg.error, /libmtmd was not built on this machine \(it needs git, cmake and a C\+\+ compiler at install; then run `npm run build:vision`\)/);
});
