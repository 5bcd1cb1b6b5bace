// SentencePiece `tokenizer.model` files: a protobuf ModelProto. Only the fields a GGUF vocabulary
// needs are decoded (pieces with score and type, the model type, special ids, add_dummy_prefix);
// everything else is skipped by wire type.

import { ConvertError } from "./errors.ts";

export interface SentencePieceModel {
  pieces: Array<{ piece: string; score: number; type: number }>;
  /** 1 unigram, 2 BPE, 3 word, 4 char. */
  modelType: number;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  addDummyPrefix: boolean;
}

class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly file: string,
    readonly base = 0,
  ) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  fail(problem: string): never {
    throw new ConvertError(`${this.file}: not a valid SentencePiece model: ${problem} at byte ${this.base + this.pos}`);
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) this.fail("truncated varint");
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    return this.fail("varint too long");
  }
  /** int32 fields are sign-extended to 64 bits on the wire; the low 32 bits are the value. */
  int32(): number {
    let low = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) this.fail("truncated varint");
      const b = this.buf[this.pos++]!;
      if (i < 5) low |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) return low | 0;
    }
    return this.fail("varint too long");
  }
  bytes(): Reader {
    const n = this.varint();
    if (this.pos + n > this.buf.length) this.fail(`length ${n} runs past the end`);
    const r = new Reader(this.buf.subarray(this.pos, this.pos + n), this.file, this.base + this.pos);
    this.pos += n;
    return r;
  }
  float(): number {
    if (this.pos + 4 > this.buf.length) this.fail("truncated float");
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else this.fail(`unsupported wire type ${wire}`);
    if (this.pos > this.buf.length) this.fail("truncated field");
  }
  text(): string {
    const r = this.bytes();
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(r.buf);
    } catch {
      return this.fail("a piece is not valid UTF-8");
    }
  }
}

export function parseSentencePiece(data: Uint8Array, file = "tokenizer.model"): SentencePieceModel {
  const model: SentencePieceModel = { pieces: [], modelType: 1, unkId: 0, bosId: 1, eosId: 2, padId: -1, addDummyPrefix: true };
  const r = new Reader(data, file);
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) {
      const p = r.bytes();
      const piece = { piece: "", score: 0, type: 1 };
      while (!p.done) {
        const t = p.varint();
        if (t === (1 << 3) + 2) piece.piece = p.text();
        else if (t === (2 << 3) + 5) piece.score = p.float();
        else if (t === (3 << 3) + 0) piece.type = p.varint();
        else p.skip(t & 7);
      }
      model.pieces.push(piece);
    } else if (field === 2 && wire === 2) {
      const s = r.bytes();
      while (!s.done) {
        const t = s.varint();
        const f = Math.floor(t / 8);
        if (f === 3 && (t & 7) === 0) model.modelType = s.varint();
        else if (f === 40 && (t & 7) === 0) model.unkId = s.int32();
        else if (f === 41 && (t & 7) === 0) model.bosId = s.int32();
        else if (f === 42 && (t & 7) === 0) model.eosId = s.int32();
        else if (f === 43 && (t & 7) === 0) model.padId = s.int32();
        else s.skip(t & 7);
      }
    } else if (field === 3 && wire === 2) {
      const n = r.bytes();
      while (!n.done) {
        const t = n.varint();
        if (t === (3 << 3) + 0) model.addDummyPrefix = n.varint() !== 0;
        else n.skip(t & 7);
      }
    } else {
      r.skip(wire);
    }
  }
  if (model.pieces.length === 0) r.fail("no pieces");
  return model;
}
