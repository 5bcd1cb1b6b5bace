// Reading config.json values with errors that name the field.

import { ConvertError } from "./errors.ts";

export type HFConfig = Record<string, unknown>;

export class ConfigReader {
  constructor(
    readonly config: HFConfig,
    readonly file = "config.json",
  ) {}

  private value(key: string): unknown {
    // Multimodal wrappers keep the language model's values under text_config.
    const v = this.config[key];
    if (v !== undefined && v !== null) return v;
    const text = this.config["text_config"];
    if (text && typeof text === "object") return (text as Record<string, unknown>)[key] ?? undefined;
    return undefined;
  }

  has(key: string): boolean {
    return this.value(key) !== undefined;
  }

  /** A positive integer from the first key present; throws naming the keys when none is. */
  int(...keys: string[]): number {
    const v = this.optInt(...keys);
    if (v === undefined) throw new ConvertError(`${this.file}: missing "${keys[0]}" (a positive integer)`);
    return v;
  }

  optInt(...keys: string[]): number | undefined {
    for (const k of keys) {
      const v = this.value(k);
      if (v === undefined) continue;
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw new ConvertError(`${this.file}: "${k}" must be a positive integer, got ${JSON.stringify(v)}`);
      return v;
    }
    return undefined;
  }

  optNumber(...keys: string[]): number | undefined {
    for (const k of keys) {
      const v = this.value(k);
      if (v === undefined) continue;
      if (typeof v !== "number" || !Number.isFinite(v)) throw new ConvertError(`${this.file}: "${k}" must be a number, got ${JSON.stringify(v)}`);
      return v;
    }
    return undefined;
  }

  optBool(key: string): boolean | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") throw new ConvertError(`${this.file}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  optObject(key: string): Record<string, unknown> | undefined {
    const v = this.value(key);
    if (v === undefined) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) throw new ConvertError(`${this.file}: "${key}" must be an object, got ${JSON.stringify(v)}`);
    return v as Record<string, unknown>;
  }

  optString(key: string): string | undefined {
    const v = this.value(key);
    return typeof v === "string" ? v : undefined;
  }
}
