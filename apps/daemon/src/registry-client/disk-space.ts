// Whether a pull fits on the disk, checked before anything is downloaded. The sizes are the
// registry's word: without the check, a layer declared far larger than the disk gets a pre-sized
// (sparse) data file and a state file per part, and the pull runs until a write meets the full disk.

import { statfs } from "node:fs/promises";
import { humanBytes } from "@corral/shared/format";
import type { Descriptor } from "@corral/shared/manifest";
import type { ModelName } from "@corral/shared/name";
import { StatusError } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { PartialDownload } from "../store/partial-downloads.ts";

/** Fails with one line naming the model, the bytes still to come and the space free when they do not fit. */
export async function checkFreeSpace(store: Store, name: ModelName, blobs: Descriptor[]): Promise<void> {
  const sizes = new Map<string, number>();
  for (const b of blobs) sizes.set(b.digest, Math.max(sizes.get(b.digest) ?? 0, b.size));
  let need = 0;
  let largest: { digest: string; size: number } | undefined;
  for (const [digest, size] of sizes) {
    if (await store.blobs.has(digest)) continue;
    need += Math.max(0, size - (await PartialDownload.bytesOnDisk(store.blobs, digest)));
    if (!largest || size > largest.size) largest = { digest, size };
  }
  if (need === 0 || !largest) return;
  // A filesystem that cannot say is not refused: the writes will tell.
  const fs = await statfs(store.blobs.dir).catch(() => undefined);
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  if (need <= free) return;
  throw new StatusError(
    507,
    `no space left on device for pulling ${name.shortest()}: its missing blobs need ${humanBytes(need)} and ${store.blobs.dir} has ${humanBytes(free)} free ` +
      `(the largest is ${largest.digest}, ${humanBytes(largest.size)})`,
  );
}
