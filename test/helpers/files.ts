// Small file-system helpers shared by the suites.
import { readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";

/** Every regular file below `dir`, as sorted paths relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if ((await stat(p)).isFile()) out.push(relative(dir, p));
    }
  };
  await walk(dir);
  return out.sort();
}
