import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fixtures } from "../../../test/fixtures.ts";
import {
  GGUFValueType,
  SplitGGUFError,
  mergeSplitGGUF,
  orderSplitShards,
  parseSplitFileName,
  planSplitMerge,
  readGGUFHeader,
  splitInfo,
  splitShardKey,
  writeGGUF,
  writeSplitGGUF,
  type GGUFHeader,
  type GGUFKV,
} from "@corral/shared/gguf/index";

let dir: string;
let shardPaths: string[];
let shards: Array<{ name: string; path: string; header: GGUFHeader }>;
let original: GGUFHeader;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gguf-split-"));
  original = await readGGUFHeader(fixtures.stories260K);
  shardPaths = await writeSplitGGUF(fixtures.stories260K, 3, join(dir, "stories"));
  shards = await Promise.all(shardPaths.map(async (p) => ({ name: basename(p), path: p, header: await readGGUFHeader(p) })));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = async (path: string): Promise<string> => createHash("sha256").update(await readFile(path)).digest("hex");

/** A shard's header with its KV replaced, for building broken sets. */
function withKV(h: GGUFHeader, edit: (kv: Map<string, GGUFKV>) => void): GGUFHeader {
  const kv = new Map(h.kv);
  edit(kv);
  return { ...h, kv };
}

function expectSplitError(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SplitGGUFError, `expected SplitGGUFError, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

describe("writeSplitGGUF", () => {
  test("writes llama.cpp-style shards", () => {
    assert.deepEqual(shards.map((s) => s.name), ["stories-00001-of-00003.gguf", "stories-00002-of-00003.gguf", "stories-00003-of-00003.gguf"]);
    assert.deepEqual(shards.map((s) => s.header.tensors.length), [16, 16, 16]);
    const [first, second] = shards;
    assert.equal(first!.header.kv.size, 19 + 3);
    assert.deepEqual([...first!.header.kv.keys()].slice(-3), ["split.no", "split.count", "split.tensors.count"]);
    assert.deepEqual([...second!.header.kv.keys()], ["split.no", "split.count", "split.tensors.count"]);
    assert.equal(second!.header.kv.get("split.no")?.type, GGUFValueType.UINT16);
    assert.equal(second!.header.kv.get("split.count")?.type, GGUFValueType.UINT16);
    assert.equal(second!.header.kv.get("split.tensors.count")?.type, GGUFValueType.INT32);
    shards.forEach((s, i) => assert.deepEqual(splitInfo(s.header), { no: i, count: 3, tensorsCount: 48 }));
    assert.deepEqual(shards.flatMap((s) => s.header.tensors.map((t) => t.name)), original.tensors.map((t) => t.name));
  });

  test("refuses more parts than tensors", async () => {
    await assert.rejects(writeSplitGGUF(fixtures.tinyRandomLlama2, 13, join(dir, "toomany")), /cannot split 12 tensors into 13 parts/);
  });
});

describe("merging", () => {
  test("plan orders a shuffled set; the merge reproduces the original byte for byte", async () => {
    const shuffled = [shards[2]!, shards[0]!, shards[1]!];
    const groups = planSplitMerge(shuffled);
    assert.equal(groups.length, 1);
    assert.deepEqual(groups[0]!.map((s) => s.name), shards.map((s) => s.name));
    const out = join(dir, "merged.gguf");
    const res = await mergeSplitGGUF(groups[0]!, out);
    assert.equal(res.tensors, 48);
    assert.equal(await sha256(out), await sha256(fixtures.stories260K));
    const merged = await readGGUFHeader(out);
    assert.deepEqual(splitInfo(merged), {});
    assert.deepEqual([...merged.kv.keys()], [...original.kv.keys()]);
  });

  test("a set of five parts of a model with F16 tensors merges back exactly", async () => {
    const paths = await writeSplitGGUF(fixtures.tinyRandomLlama2, 5, join(dir, "tiny"));
    const files = await Promise.all(paths.map(async (p) => ({ name: basename(p), path: p, header: await readGGUFHeader(p) })));
    assert.deepEqual(files.map((f) => f.header.tensors.length), [2, 2, 3, 2, 3]);
    const [group] = planSplitMerge(files.reverse());
    const out = join(dir, "tiny-merged.gguf");
    await mergeSplitGGUF(group!, out);
    assert.equal(await sha256(out), await sha256(fixtures.tinyRandomLlama2));
  });

  test("arch-prefixed split keys are recognised and dropped", async () => {
    // Rewrite each shard with llama.split.* instead of split.* (shards after the first get the architecture too).
    const prefixed: Array<{ name: string; path: string; header: GGUFHeader }> = [];
    for (const s of shards) {
      const kv = [...s.header.kv.values()].map((e) => (e.key.startsWith("split.") ? { ...e, key: `llama.${e.key}` } : e));
      if (!s.header.kv.has("general.architecture")) kv.unshift({ key: "general.architecture", type: GGUFValueType.STRING, value: "llama" });
      const path = join(dir, `pfx-${s.name}`);
      await writeGGUF(path, {
        kv,
        tensors: s.header.tensors.map((t) => ({ ...t, source: { path: s.path, offset: s.header.dataOffset + t.offset, size: t.size } })),
      });
      prefixed.push({ name: `pfx-${s.name}`, path, header: await readGGUFHeader(path) });
    }
    assert.deepEqual(splitInfo(prefixed[1]!.header), { no: 1, count: 3, tensorsCount: 48 });
    const [group] = planSplitMerge(prefixed);
    const out = join(dir, "pfx-merged.gguf");
    await mergeSplitGGUF(group!, out);
    assert.equal(await sha256(out), await sha256(fixtures.stories260K));
  });

  test("files that are not shards pass through as groups of their own", () => {
    const single = { name: "model.gguf", header: original };
    assert.deepEqual(splitInfo(original), {});
    assert.equal(splitShardKey(single), undefined);
    const groups = planSplitMerge([single, ...shards, { name: "other.gguf", header: original }]);
    assert.deepEqual(groups.map((g) => g.map((f) => f.name)), [["model.gguf"], shards.map((s) => s.name), ["other.gguf"]]);
  });

  test("sets are told apart by prefix and media type", () => {
    const renamed = shards.map((s) => ({ ...s, name: s.name.replace("stories", "other") }));
    const groups = planSplitMerge([...shards, ...renamed]);
    assert.equal(groups.length, 2);
    const typed = [...shards.map((s) => ({ ...s, mediaType: "a" })), ...shards.map((s) => ({ ...s, mediaType: "b" }))];
    assert.equal(planSplitMerge(typed).length, 2);
  });

  test("a split.tensors.count that disagrees with the shards is refused", async () => {
    const bad = shards.map((s, i) => ({
      ...s,
      header: i === 0 ? withKV(s.header, (kv) => kv.set("split.tensors.count", { key: "split.tensors.count", type: GGUFValueType.INT32, value: 47 })) : s.header,
    }));
    await assert.rejects(mergeSplitGGUF(bad, join(dir, "never.gguf")), /declares 47 tensors in split.tensors.count but the shards hold 48/);
  });
});

describe("split set errors", () => {
  const h = (i: number): GGUFHeader => shards[i]!.header;

  test("file name pattern", () => {
    assert.deepEqual(parseSplitFileName("dir/m-00002-of-00003.gguf"), { dir: "dir", prefix: "m", index: 1, count: 3 });
    assert.equal(parseSplitFileName("m-00000-of-00003.gguf"), undefined);
    assert.equal(parseSplitFileName("m-00001-of-00000.gguf"), undefined);
    assert.equal(parseSplitFileName("m-99999-of-99999.gguf"), undefined);
    assert.equal(parseSplitFileName("m-0001-of-0003.gguf"), undefined);
    expectSplitError(() => planSplitMerge([{ name: "model.gguf", header: h(0) }]), 'split GGUF "model.gguf" must use llama.cpp split filename pattern');
  });

  test("filename count does not match metadata count", () => {
    expectSplitError(
      () => planSplitMerge([{ name: "m-00001-of-00004.gguf", header: h(0) }]),
      'split GGUF "m-00001-of-00004.gguf" filename count 4 does not match metadata count 3',
    );
  });

  test("filename index beyond the count", () => {
    expectSplitError(
      () => planSplitMerge([{ name: "m-00005-of-00003.gguf", header: h(0) }]),
      'split GGUF "m-00005-of-00003.gguf" filename index 4 exceeds metadata count 3',
    );
  });

  test("missing split.no", () => {
    const header = withKV(h(1), (kv) => kv.delete("split.no"));
    expectSplitError(() => planSplitMerge([{ name: "m-00002-of-00003.gguf", header }]), 'split GGUF "m-00002-of-00003.gguf" is missing split.no metadata');
    expectSplitError(() => orderSplitShards([{ name: "a", header: h(0) }, { name: "b", header }, { name: "c", header: h(2) }]), 'split GGUF "b" is missing split.no metadata');
  });

  test("filename index does not match metadata index", () => {
    expectSplitError(
      () => planSplitMerge([{ name: "m-00001-of-00003.gguf", header: h(1) }]),
      'split GGUF "m-00001-of-00003.gguf" filename index 0 does not match metadata index 1',
    );
  });

  test("wrong number of shards", () => {
    expectSplitError(() => planSplitMerge([shards[0]!, shards[2]!]), 'split GGUF "stories-00001-of-00003.gguf" has 2 shards, expected 3');
  });

  test("invalid shard index", () => {
    const header = withKV(h(2), (kv) => kv.set("split.no", { key: "split.no", type: GGUFValueType.UINT16, value: 7 }));
    expectSplitError(() => orderSplitShards([shards[0]!, shards[1]!, { name: "x.gguf", header }]), 'split GGUF "x.gguf" has invalid shard index 7');
  });

  test("duplicate shard index", () => {
    expectSplitError(() => planSplitMerge([shards[0]!, shards[1]!, shards[1]!]), "split GGUF has duplicate shard index 1");
  });

  // "split GGUF is missing first shard" and "split GGUF "<f>" is missing shard <i>" cannot be
  // reached: as in Ollama, the shard count is checked against the first file's split.count before
  // the indices, and that many distinct indices below the count always include every shard.

  test("empty group", () => {
    expectSplitError(() => orderSplitShards([]), "empty split GGUF group");
  });
});
