// PyTorch zip checkpoints (torch.save since 1.6): a `<prefix>/data.pkl` state dict whose
// tensors point into `<prefix>/data/<key>` storages. Tensors become byte ranges of the zip file,
// so their data is streamed later like any safetensors tensor.

import { open } from "node:fs/promises";
import { ConvertError } from "./errors.ts";
import { loadStateDict } from "./pickle.ts";
import { elementCount, type TensorRef } from "./tensor-ref.ts";
import { readZipDirectory } from "./zip.ts";

const ELEMENT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** State-dict pickles are small (names and shapes); a bigger one is not a state dict. */
const MAX_PICKLE = 256 * 1024 * 1024;

export async function readTorchCheckpoint(path: string, file: string): Promise<TensorRef[]> {
  const fh = await open(path, "r");
  try {
    const members = await readZipDirectory(fh, file);
    const pkl = members.find((m) => m.name.endsWith("/data.pkl") || m.name === "data.pkl");
    if (!pkl) throw new ConvertError(`${file}: the zip has no data.pkl; it is not a PyTorch checkpoint`);
    const prefix = pkl.name.slice(0, pkl.name.length - "data.pkl".length);
    if (pkl.method !== 0) throw new ConvertError(`${file}: ${pkl.name} is compressed; PyTorch checkpoints store it uncompressed`);
    if (pkl.size > MAX_PICKLE) throw new ConvertError(`${file}: ${pkl.name} has ${pkl.size} bytes, too large for a state dict`);
    const data = Buffer.alloc(pkl.size);
    await fh.read(data, 0, pkl.size, pkl.dataOffset);
    const byName = new Map(members.map((m) => [m.name, m]));
    const out: TensorRef[] = [];
    for (const [name, t] of loadStateDict(data, file)) {
      const where = `${file}: tensor ${JSON.stringify(name)}`;
      const elem = ELEMENT_BYTES[t.storage.dtype];
      if (elem === undefined) throw new ConvertError(`${where}: unknown storage type ${t.storage.dtype}`);
      // Only row-major contiguous views are plain byte ranges.
      let expect = 1;
      for (let i = t.shape.length - 1; i >= 0; i--) {
        if (t.shape[i]! > 1 && t.stride[i] !== expect) throw new ConvertError(`${where}: not contiguous (stride [${t.stride.join(", ")}] for shape [${t.shape.join(", ")}])`);
        expect *= t.shape[i]!;
      }
      const member = byName.get(`${prefix}data/${t.storage.key}`);
      if (!member) throw new ConvertError(`${where}: storage ${prefix}data/${t.storage.key} is missing from the zip`);
      if (member.method !== 0) throw new ConvertError(`${where}: storage ${member.name} is compressed`);
      const size = elementCount(t.shape) * elem;
      const start = t.storageOffset * elem;
      if (start + size > member.size) throw new ConvertError(`${where}: its ${size} bytes at element ${t.storageOffset} run past storage ${member.name} (${member.size} bytes)`);
      out.push({ name, dtype: t.storage.dtype, shape: t.shape, path, offset: member.dataOffset + start, size, file });
    }
    return out;
  } finally {
    await fh.close();
  }
}
