// Writing a small file so that it is on disk before it is renamed into place: a crash never
// leaves a visible manifest or blob with missing bytes.
import { open } from "node:fs/promises";

export async function writeDurably(path: string, data: Uint8Array, mode = 0o644): Promise<void> {
  const fh = await open(path, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
