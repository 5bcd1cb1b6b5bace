// The GGUF header reader's work grows linearly with what a header holds: n tokens, metadata entries,
// array elements or tensors, and what the daemon does with a header next (its JSON for `show`, the
// parameter count, the architecture). Counted, not timed (test/helpers/count-steps.ts): the
// JavaScript blocks executed for n and for 2n double, where a rescan per entry would quadruple them.
// The property tests in fuzz-gguf.test.ts bound each hostile case by the bytes it reads and the
// values it decodes.

import { describe, it } from "node:test";
import { assertLinearSteps } from "../../../test/helpers/count-steps.ts";

// Loaded once counting has started, so that all of the reader's code is counted.
const { architecture, kvToJSON, parameterCount, parseGGUFHeader } = await import("@corral/shared/gguf/index");

const READER = /\/packages\/shared\/src\/gguf\//;

/** Little-endian GGUF v3 fields, written by hand so that building a header is not counted. */
class Header {
  private readonly parts: Buffer[] = [];
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, "utf8");
    return this.u64(b.length).raw(b);
  }
  raw(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }
  /** Magic, version 3 and the two counts. */
  static start(tensors: number, kvs: number): Header {
    return new Header().raw(Buffer.from("GGUF")).u32(3).u64(tensors).u64(kvs);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const STRING = 8;
const ARRAY = 9;
const U32 = 4;
const F32_TENSOR = 0;

/** Parses `bytes` (checking the tensors' layout) and does what the daemon does with a header next. */
async function readAndUse(bytes: Uint8Array): Promise<void> {
  const h = await parseGGUFHeader(bytes, { name: "work.gguf", validateLayout: true });
  JSON.stringify(kvToJSON(h, { verbose: true }));
  JSON.stringify(kvToJSON(h));
  parameterCount(h);
  architecture(h);
}

describe("the GGUF reader's work", () => {
  it("is linear in the tokens of a vocabulary", async () => {
    const vocabulary = (n: number): Buffer => {
      const g = Header.start(0, 2).str("general.architecture").u32(STRING).str("llama");
      g.str("tokenizer.ggml.tokens").u32(ARRAY).u32(STRING).u64(n);
      for (let i = 0; i < n; i++) g.str(`tok${i}`);
      return g.bytes();
    };
    await assertLinearSteps("a vocabulary of n tokens", READER, (n) => readAndUse(vocabulary(n)), 20_000);
  });

  it("is linear in the metadata entries", async () => {
    const entries = (n: number): Buffer => {
      const g = Header.start(0, n);
      for (let i = 0; i < n; i++) g.str(`general.key${i}`).u32(U32).u32(i);
      return g.bytes();
    };
    await assertLinearSteps("n metadata entries", READER, (n) => readAndUse(entries(n)), 5_000);
  });

  it("is linear in the elements of a numeric array", async () => {
    const array = (n: number): Buffer => Header.start(0, 1).str("scores").u32(ARRAY).u32(U32).u64(n).raw(Buffer.alloc(4 * n)).bytes();
    await assertLinearSteps("an array of n numbers", READER, (n) => readAndUse(array(n)), 100_000);
  });

  it("is linear in the tensors, their layout checked against each other", async () => {
    const tensors = (n: number): Buffer => {
      const g = Header.start(n, 0);
      // Listed out of the order of their offsets (a permutation: 7919 is a prime that divides no n
      // here), so that the layout check has to sort them.
      for (let i = 0; i < n; i++) g.str(`blk.${i}.weight`).u32(1).u64(8).u32(F32_TENSOR).u64(((i * 7919) % n) * 32);
      const header = g.bytes();
      const dataOffset = Math.ceil(header.length / 32) * 32;
      return Buffer.concat([header, Buffer.alloc(dataOffset - header.length + 32 * n)]);
    };
    await assertLinearSteps("n tensors", READER, (n) => readAndUse(tensors(n)), 2_000);
  });
});
