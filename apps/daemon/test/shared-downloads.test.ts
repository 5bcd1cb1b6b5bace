// One download per blob for every pull that wants it (shared-downloads.ts), with downloads the
// test starts and ends by hand: a pull that arrives while a download every earlier pull left is
// still stopping waits for it and then starts its own, instead of failing with their cancellation
// or downloading beside it into the same files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { awaitDownload, type StartDownload } from "../src/registry-client/shared-downloads.ts";

/** Downloads that run until the test ends them; each one's progress report and signal are kept. */
function downloads() {
  const started: Array<{ report: (c: number, t: number) => void; signal: AbortSignal; end: (e?: Error) => void }> = [];
  const start: StartDownload = (report, signal) =>
    new Promise<void>((resolve, reject) => {
      started.push({ report, signal, end: (e) => (e ? reject(e) : resolve()) });
    });
  return { started, start };
}

const settled = (p: Promise<unknown>): Promise<string> =>
  Promise.race([p.then(() => "resolved", () => "rejected"), new Promise<string>((r) => setImmediate(() => r("pending")))]);

test("a pull that arrives while an abandoned download stops waits for it, then downloads afresh", async () => {
  const { started, start } = downloads();
  const leaving = new AbortController();
  const first = awaitDownload("sha256:abandoned", start, () => {}, leaving.signal);
  assert.equal(started.length, 1);
  leaving.abort(new Error("the client went away"));
  await assert.rejects(first, /the client went away/);
  assert.ok(started[0]!.signal.aborted, "the last pull to leave cancels the download");

  // The cancelled download has not ended yet (it still holds its files).
  const second = awaitDownload("sha256:abandoned", start, () => {}, undefined);
  assert.equal(await settled(second), "pending");
  assert.equal(started.length, 1, "nothing starts beside the download that is stopping");

  started[0]!.end(new Error("the download was cancelled"));
  for (let i = 0; i < 10 && started.length < 2; i++) await settled(second);
  assert.equal(started.length, 2, "a new download starts once the old one ended");
  assert.equal(started[1]!.signal.aborted, false);
  started[1]!.end();
  await second;
});

test("a pull waiting for an abandoned download to stop can itself be cancelled", async () => {
  const { started, start } = downloads();
  const leaving = new AbortController();
  const first = awaitDownload("sha256:abandoned-twice", start, () => {}, leaving.signal);
  leaving.abort(new Error("the first client went away"));
  await assert.rejects(first);
  const alsoLeaving = new AbortController();
  const second = awaitDownload("sha256:abandoned-twice", start, () => {}, alsoLeaving.signal);
  alsoLeaving.abort(new Error("the second client went away"));
  await assert.rejects(second, /the second client went away/);
  started[0]!.end(new Error("the download was cancelled"));
  assert.equal(started.length, 1);
});

test("pulls of one blob share one download and both see its progress", async () => {
  const { started, start } = downloads();
  const seen: string[] = [];
  const a = awaitDownload("sha256:shared", start, (c, t) => seen.push(`a ${c}/${t}`));
  const b = awaitDownload("sha256:shared", start, (c, t) => seen.push(`b ${c}/${t}`));
  assert.equal(started.length, 1, "the second pull joins the first one's download");
  started[0]!.report(5, 10);
  started[0]!.end();
  await Promise.all([a, b]);
  assert.deepEqual(seen, ["a 5/10", "b 5/10"]);
});
