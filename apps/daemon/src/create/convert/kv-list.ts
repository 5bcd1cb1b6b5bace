// An ordered GGUF metadata list with typed setters; a later set of the same key replaces it.

import { GGUFValueType, ggufArray, type GGUFKV, type GGUFValue } from "@corral/shared/gguf/index";

export class KVList {
  private readonly entries = new Map<string, GGUFKV>();

  private put(key: string, type: GGUFValueType, value: GGUFValue, arrayType?: GGUFValueType): this {
    this.entries.set(key, arrayType === undefined ? { key, type, value } : { key, type, value, arrayType });
    return this;
  }

  u32(key: string, v: number | undefined): this {
    return v === undefined ? this : this.put(key, GGUFValueType.UINT32, v);
  }
  i32(key: string, v: number | undefined): this {
    return v === undefined ? this : this.put(key, GGUFValueType.INT32, v);
  }
  f32(key: string, v: number | undefined): this {
    return v === undefined ? this : this.put(key, GGUFValueType.FLOAT32, v);
  }
  str(key: string, v: string | undefined): this {
    return v === undefined ? this : this.put(key, GGUFValueType.STRING, v);
  }
  bool(key: string, v: boolean | undefined): this {
    return v === undefined ? this : this.put(key, GGUFValueType.BOOL, v);
  }
  strings(key: string, v: string[]): this {
    return this.put(key, GGUFValueType.ARRAY, ggufArray(v, GGUFValueType.STRING), GGUFValueType.STRING);
  }
  f32s(key: string, v: number[]): this {
    return this.put(key, GGUFValueType.ARRAY, ggufArray(v, GGUFValueType.FLOAT32), GGUFValueType.FLOAT32);
  }
  i32s(key: string, v: number[]): this {
    return this.put(key, GGUFValueType.ARRAY, ggufArray(v, GGUFValueType.INT32), GGUFValueType.INT32);
  }
  has(key: string): boolean {
    return this.entries.has(key);
  }
  get(key: string): GGUFValue | undefined {
    return this.entries.get(key)?.value;
  }
  list(): GGUFKV[] {
    return [...this.entries.values()];
  }
}
