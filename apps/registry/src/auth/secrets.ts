// Keys every registry process on one database must share: the token signing key and the key that
// signs the registry's own blob URLs. Created once, on first start, inside the database.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { settings } from "../db/schema.ts";

export interface Secrets {
  tokenKey: Uint8Array;
  urlKey: Buffer;
}

async function getOrCreate(db: Database, key: string): Promise<Buffer> {
  await db.insert(settings).values({ key, value: randomBytes(32).toString("base64") }).onConflictDoNothing();
  const [row] = await db.select().from(settings).where(eq(settings.key, key));
  if (!row) throw new Error(`setting ${key} could not be created`);
  return Buffer.from(row.value, "base64");
}

export async function loadSecrets(db: Database): Promise<Secrets> {
  return { tokenKey: new Uint8Array(await getOrCreate(db, "token_key")), urlKey: await getOrCreate(db, "blob_url_key") };
}

/** The signature of a blob URL: HMAC over the digest and the expiry. */
export function signBlobURL(key: Buffer, digest: string, expires: number): string {
  return createHmac("sha256", key).update(`${digest}\n${expires}`).digest("base64url");
}

export function checkBlobURL(key: Buffer, digest: string, expires: number, sig: string): boolean {
  const want = Buffer.from(signBlobURL(key, digest, expires));
  const got = Buffer.from(sig);
  return want.length === got.length && timingSafeEqual(want, got);
}
