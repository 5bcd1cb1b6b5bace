// Just enough of the ZIP format to find the members of a PyTorch checkpoint: the central
// directory (with ZIP64 extensions) and each member's data offset. PyTorch stores members
// uncompressed, so a member is a plain byte range of the archive.

import type { FileHandle } from "node:fs/promises";
import { ConvertError } from "./errors.ts";

export interface ZipMember {
  name: string;
  /** 0 = stored. */
  method: number;
  size: number;
  compressedSize: number;
  /** Absolute offset of the member's data. */
  dataOffset: number;
}

const EOCD_SIG = 0x06054b50;
const EOCD64_LOCATOR_SIG = 0x07064b50;
const EOCD64_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
/** The central directory of a checkpoint is small; more is not plausible. */
const MAX_CENTRAL = 64 * 1024 * 1024;

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  return buf.subarray(0, bytesRead);
}

export async function readZipDirectory(fh: FileHandle, file: string): Promise<ZipMember[]> {
  const fail = (problem: string): never => {
    throw new ConvertError(`${file}: not a readable PyTorch zip checkpoint: ${problem}`);
  };
  const { size } = await fh.stat();
  const tailLen = Math.min(size, 65535 + 22);
  const tail = await readAt(fh, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return fail("no end-of-central-directory record (legacy non-zip torch.save files are not supported; re-save with a recent PyTorch)");
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locAt = size - tailLen + eocd - 20;
    if (locAt < 0) fail("ZIP64 locator missing");
    const loc = await readAt(fh, locAt, 20);
    if (loc.length < 20 || loc.readUInt32LE(0) !== EOCD64_LOCATOR_SIG) fail("ZIP64 locator missing");
    const recAt = Number(loc.readBigUInt64LE(8));
    if (recAt + 56 > size) fail(`ZIP64 end-of-central-directory record at ${recAt} lies outside the file`);
    const rec = await readAt(fh, recAt, 56);
    if (rec.length < 56 || rec.readUInt32LE(0) !== EOCD64_SIG) fail("ZIP64 end-of-central-directory record missing");
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  if (cdSize > MAX_CENTRAL || cdOffset + cdSize > size) fail(`central directory (${cdSize} bytes at ${cdOffset}) does not fit the file`);
  const cd = await readAt(fh, cdOffset, cdSize);
  const members: Array<ZipMember & { localOffset: number }> = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL_SIG) fail(`central directory entry ${i} is damaged`);
    const method = cd.readUInt16LE(p + 10);
    let compressedSize = cd.readUInt32LE(p + 20);
    let uncompressed = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localOffset = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) fail(`central directory entry ${i} runs past the end of the directory`);
    const name = cd.subarray(p + 46, p + 46 + nameLen).toString("utf8");
    // ZIP64 extra field: only the values that overflowed are present, in this order.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      const fieldEnd = x + 4 + len;
      if (fieldEnd > xEnd) fail(`member ${JSON.stringify(name)} has an extra field that runs past its entry`);
      if (id === 0x0001) {
        let q = x + 4;
        const wide = (): number => {
          if (q + 8 > fieldEnd) fail(`member ${JSON.stringify(name)} has a ZIP64 field too short for the sizes it must hold`);
          const v = Number(cd.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (uncompressed === 0xffffffff) uncompressed = wide();
        if (compressedSize === 0xffffffff) compressedSize = wide();
        if (localOffset === 0xffffffff) localOffset = wide();
      }
      x = fieldEnd;
    }
    p = xEnd + commentLen;
    // A stored member's data is its content; differing sizes would make a reader allocate for
    // bytes the archive does not hold.
    if (method === 0 && uncompressed !== compressedSize) {
      fail(`member ${JSON.stringify(name)} is stored but declares ${uncompressed} bytes of content in ${compressedSize} bytes of data`);
    }
    if (localOffset + 30 > size) fail(`member ${JSON.stringify(name)} has its local header at ${localOffset}, outside the file`);
    const local = await readAt(fh, localOffset, 30);
    if (local.length < 30 || local.readUInt32LE(0) !== LOCAL_SIG) fail(`member ${JSON.stringify(name)} has no local header at ${localOffset}`);
    const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (dataOffset + compressedSize > size) fail(`member ${JSON.stringify(name)} runs past the end of the file`);
    members.push({ name, method, size: uncompressed, compressedSize, dataOffset, localOffset });
  }
  // Members that share bytes are how zip bombs multiply their size; archives PyTorch writes never do.
  const byOffset = [...members].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const cur = byOffset[i]!;
    if (prev.dataOffset + prev.compressedSize > cur.localOffset) fail(`members ${JSON.stringify(prev.name)} and ${JSON.stringify(cur.name)} overlap`);
  }
  return members.map(({ localOffset: _localOffset, ...m }) => m);
}
