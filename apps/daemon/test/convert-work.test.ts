// The checkpoint readers' work grows linearly with what a file holds: pickles of n appends, dicts
// nested n deep, dicts sharing their children n levels down, state dicts of n tensors, zips of n
// members, safetensors headers of n tensors. Counted, not timed (test/helpers/count-steps.ts): the
// JavaScript blocks executed for n and for 2n double, where a rescan per item would quadruple them
// and a walk of every path through shared dicts would grow as 2^n. The property tests in
// fuzz-convert.test.ts bound each hostile case's memory.

import assert from "node:assert/strict";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { assertLinearSteps } from "../../../test/helpers/count-steps.ts";
import { op, stateDictPickle } from "./support/torch-pickle.ts";
import { zip } from "./support/zip.ts";

// Loaded once counting has started, so that all of the readers' code is counted.
const { ConvertError } = await import("../src/create/convert/errors.ts");
const { loadStateDict } = await import("../src/create/convert/pickle.ts");
const { readSafetensors } = await import("../src/create/convert/safetensors.ts");
const { readTorchCheckpoint } = await import("../src/create/convert/torch.ts");
const { readZipDirectory } = await import("../src/create/convert/zip.ts");

const READERS = /\/apps\/daemon\/src\/create\/convert\//;

/** Runs a reader to its result or its ConvertError; any other exception fails the test. */
async function outcome(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof ConvertError)) throw e;
  }
}

/** n tensors of two floats each, named and stored in order. */
const tensors = (n: number): Array<{ name: string; shape: number[] }> => Array.from({ length: n }, (_, i) => ({ name: `layers.${i}.weight`, shape: [2] }));

describe("the checkpoint readers' work", () => {
  let dir = "";
  let files = 0;
  const file = async (bytes: Uint8Array): Promise<string> => {
    const p = join(dir, `case-${files++}`);
    await writeFile(p, bytes);
    return p;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "corral-convert-work-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is linear in a pickle's appends", async () => {
    await assertLinearSteps("a list of n appended items", READERS, (n) => outcome(() => loadStateDict(op("](", "N".repeat(n), "e."), "x.pt")), 20_000);
  });

  it("is linear in the depth of nested dicts", async () => {
    const deep = (n: number): Buffer => op(...Array.from({ length: n }, () => op("}", [0x8c, 1], "k")), "}", "s".repeat(n), ".");
    await assertLinearSteps("dicts nested n deep", READERS, (n) => outcome(() => loadStateDict(deep(n), "x.pt")), 5_000);
  });

  it("is linear in the levels of dicts that share their children", async () => {
    // Each level's two keys hold the level below: 2^n paths for a walk that follows every one.
    const shared = (n: number): Buffer =>
      op("}", [0x94], ...Array.from({ length: n }, (_, i) => op("}", [0x8c, 1], "a", [0x68, i], "s", [0x8c, 1], "b", [0x68, i], "s", [0x94])), ".");
    await assertLinearSteps("dicts sharing their children n levels down", READERS, (n) => outcome(() => loadStateDict(shared(n), "x.pt")), 16);
  });

  it("is linear in the tensors of a state dict", async () => {
    const pickle = (n: number): Buffer => stateDictPickle(tensors(n));
    assert.equal(loadStateDict(pickle(3), "x.pt").size, 3, "the pickle is a state dict the reader accepts");
    await assertLinearSteps("a state dict of n tensors", READERS, (n) => outcome(() => loadStateDict(pickle(n), "x.pt")), 2_000);
  });

  it("is linear in the members of a zip and the tensors of a PyTorch checkpoint", async () => {
    const checkpoint = (n: number): Buffer =>
      zip([
        { name: "archive/data.pkl", data: stateDictPickle(tensors(n)) },
        { name: "archive/byteorder", data: Buffer.from("little") },
        ...Array.from({ length: n }, (_, i) => ({ name: `archive/data/${i}`, data: Buffer.alloc(8) })),
        { name: "archive/version", data: Buffer.from("3\n") },
      ]);
    assert.equal((await readTorchCheckpoint(await file(checkpoint(3)), "model.pt")).length, 3, "the checkpoint is one the reader accepts");
    const members = async (n: number): Promise<void> => {
      const fh = await open(await file(checkpoint(n)), "r");
      try {
        await outcome(() => readZipDirectory(fh, "model.pt"));
      } finally {
        await fh.close();
      }
    };
    await assertLinearSteps("a zip of n members", READERS, members, 1_000);
    await assertLinearSteps("a checkpoint of n tensors", READERS, async (n) => outcome(async () => readTorchCheckpoint(await file(checkpoint(n)), "model.pt")), 1_000);
  });

  it("is linear in the tensors of a safetensors header", async () => {
    const safetensors = (n: number): Buffer => {
      const header: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) header[`layers.${i}.weight`] = { dtype: "F32", shape: [2], data_offsets: [8 * i, 8 * i + 8] };
      const json = Buffer.from(JSON.stringify(header));
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(json.length));
      return Buffer.concat([length, json, Buffer.alloc(8 * n)]);
    };
    assert.equal((await readSafetensors(await file(safetensors(3)), "m.safetensors")).tensors.length, 3, "the file is one the reader accepts");
    await assertLinearSteps("a safetensors header of n tensors", READERS, async (n) => outcome(async () => readSafetensors(await file(safetensors(n)), "m.safetensors")), 2_000);
  });
});
