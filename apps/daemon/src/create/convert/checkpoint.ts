// Finds the weights among a model directory's files: safetensors (single, or shards listed by
// model.safetensors.index.json), else PyTorch zip checkpoints (pytorch_model*.bin,
// consolidated*.pth). Returns every tensor as a byte range, reading headers only.

import { readFile } from "node:fs/promises";
import { ConvertError } from "./errors.ts";
import { readSafetensors } from "./safetensors.ts";
import { readTorchCheckpoint } from "./torch.ts";
import type { TensorRef } from "./tensor-ref.ts";
import type { FileSet } from "./tokenizer.ts";

const base = (name: string): string => name.slice(name.lastIndexOf("/") + 1);

export async function readCheckpoint(files: FileSet): Promise<TensorRef[]> {
  const names = [...files.keys()].sort();
  let weights = names.filter((n) => n.endsWith(".safetensors"));
  let kind: "safetensors" | "torch" = "safetensors";
  if (weights.length === 0) {
    weights = names.filter((n) => /^pytorch_model.*\.bin$/.test(base(n)) || /^consolidated.*\.pth$/.test(base(n)));
    kind = "torch";
  }
  if (weights.length === 0) throw new ConvertError(`no model weights among the files (${names.join(", ")}): expected *.safetensors, pytorch_model*.bin or consolidated*.pth`);

  // A shard index names the files that belong to the model; others (e.g. an adapter) are left out.
  const indexName = names.find((n) => base(n) === (kind === "safetensors" ? "model.safetensors.index.json" : "pytorch_model.bin.index.json"));
  let expected: Map<string, string> | undefined;
  if (indexName) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(await readFile(files.get(indexName)!, "utf8")) as typeof index;
    } catch (e) {
      throw new ConvertError(`${indexName}: invalid JSON (${(e as Error).message})`);
    }
    if (!index.weight_map || typeof index.weight_map !== "object") throw new ConvertError(`${indexName}: missing "weight_map"`);
    expected = new Map(Object.entries(index.weight_map));
    const dir = indexName.includes("/") ? indexName.slice(0, indexName.lastIndexOf("/") + 1) : "";
    const shards = new Set(expected.values());
    for (const s of shards) {
      if (!files.has(dir + s)) throw new ConvertError(`${indexName} lists shard ${s}, which was not uploaded`);
    }
    weights = [...shards].sort().map((s) => dir + s);
  }

  const refs: TensorRef[] = [];
  const seen = new Map<string, string>();
  for (const w of weights) {
    const list = kind === "safetensors" ? (await readSafetensors(files.get(w)!, w)).tensors : await readTorchCheckpoint(files.get(w)!, w);
    for (const r of list) {
      const prev = seen.get(r.name);
      if (prev) throw new ConvertError(`tensor ${JSON.stringify(r.name)} appears in both ${prev} and ${w}`);
      seen.set(r.name, w);
      refs.push(r);
    }
  }
  if (expected) {
    for (const [name, shard] of expected) {
      if (!seen.has(name)) throw new ConvertError(`${indexName} places tensor ${JSON.stringify(name)} in ${shard}, but it is not there`);
    }
  }
  return refs;
}
