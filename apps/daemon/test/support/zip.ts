// Stored zips built by hand for the PyTorch import tests, written the way torch.save writes them
// unless an entry or the end record overrides a field (to build bombs and damaged directories).

export interface ZipEntry {
  name: string;
  data: Buffer;
  /** Overrides of the central-directory fields. */
  method?: number;
  size?: number;
  compressedSize?: number;
  localOffset?: number;
  extra?: Buffer;
}

/** A stored zip written the way PyTorch writes one, except for whatever the entries override. */
export function zip(entries: ZipEntry[], eocd: { count?: number; cdSize?: number; cdOffset?: number } = {}): Buffer {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const extra = e.extra ?? Buffer.alloc(0);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(e.method ?? 0, 10);
    c.writeUInt32LE(e.compressedSize ?? e.data.length, 20);
    c.writeUInt32LE(e.size ?? e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(extra.length, 30);
    c.writeUInt32LE(e.localOffset ?? offset, 42);
    central.push(c, name, extra);
    chunks.push(local, name, e.data);
    offset += 30 + name.length + e.data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(eocd.count ?? entries.length, 8);
  end.writeUInt16LE(eocd.count ?? entries.length, 10);
  end.writeUInt32LE(eocd.cdSize ?? cd.length, 12);
  end.writeUInt32LE(eocd.cdOffset ?? offset, 16);
  return Buffer.concat([...chunks, cd, end]);
}
