// Building pickles by hand for the PyTorch import tests: opcodes, and the state-dict pickle that
// torch.save writes (protocol 2) for F32 tensors whose storages are numbered 0, 1, … in order.

/** Concatenates opcode bytes: strings as latin1 (opcodes and their text arguments), arrays as bytes. */
export const op = (...parts: Array<string | number[] | Buffer>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));

export const u32le = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** BINUNICODE. */
export const uni = (s: string): Buffer => op("X", u32le(Buffer.byteLength(s)), Buffer.from(s, "utf8"));

/** BININT. */
export const int = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return op("J", b);
};

/** The data.pkl of a torch.save'd OrderedDict of contiguous F32 tensors. */
export function stateDictPickle(tensors: Array<{ name: string; shape: number[] }>): Buffer {
  const tuple = (items: number[]): Buffer => op("(", ...items.map(int), "t");
  const body: Buffer[] = [op([0x80, 2], "ccollections\nOrderedDict\nq\x00)Rq\x01(")];
  tensors.forEach((t, i) => {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    body.push(
      uni(t.name),
      op("ctorch._utils\n_rebuild_tensor_v2\n("),
      op("(", uni("storage"), "ctorch\nFloatStorage\n", uni(String(i)), uni("cpu"), int(numel), "tQ"),
      int(0),
      tuple(t.shape),
      tuple(stride),
      op([0x89], "ccollections\nOrderedDict\n)R", "tR"),
    );
  });
  body.push(op("u."));
  return Buffer.concat(body);
}
