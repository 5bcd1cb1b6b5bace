// What the web catalog shows about a blob without downloading it: the GGUF header facts of a model
// layer (read through the blob store with ranged reads, never the tensor data) and the text of the
// small layers (template, system prompt, params, licence). Each blob is read once; the result, or
// the reason it could not be read, is kept in `blob_facts` under its digest, which never goes stale.

import { inArray, sql } from "drizzle-orm";
import { headerTraits, mentionsThinking, type HeaderTraits } from "@corral/shared/capabilities";
import { GGUFError, architecture, archKey, ggufNumber, parameterCount, parseGGUFHeader, type GGUFByteSource, type GGUFHeader } from "@corral/shared/gguf/reader";
import { fileTypeName, ggmlTypeName } from "@corral/shared/gguf/types";
import type { Database } from "../db/open.ts";
import { blobFacts } from "../db/schema.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { SingleFlight } from "@corral/shared/single-flight";

export interface GGUFFacts {
  architecture: string;
  parameterCount: number;
  /** `general.file_type` by name, else the tensor type holding most of the parameters (e.g. F32). */
  quantization: string;
  contextLength: number | null;
  embeddingLength: number | null;
  blockCount: number | null;
  /** Bytes of header before the tensor data. */
  headerBytes: number;
  /** What the header says the model can do (packages/shared/src/capabilities.ts); absent in facts read by older versions. */
  traits?: HeaderTraits;
}

export interface TextFacts {
  text: string;
  /** The blob was longer than what is kept. */
  truncated: boolean;
}

export type BlobFacts = { kind: "gguf"; facts: GGUFFacts | null; error: string | null } | { kind: "text"; facts: TextFacts | null; error: string | null };

/** The most header bytes read for one blob; real headers with 256k-token vocabularies are a few MB. */
const MAX_HEADER_READ = 64 * 1024 * 1024;
/** Text layers beyond this are shown truncated. */
export const MAX_TEXT_BYTES = 256 * 1024;

async function collect(stream: AsyncIterable<unknown>, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    parts.push(b);
    n += b.length;
    if (n >= limit) {
      (stream as { destroy?: () => void }).destroy?.();
      break;
    }
  }
  return Buffer.concat(parts).subarray(0, limit);
}

/** A GGUFByteSource over a stored blob: each read is one ranged read of the store. */
export function blobByteSource(store: BlobStore, digest: string, size: number): GGUFByteSource {
  let total = 0;
  return {
    size,
    async read(offset, length) {
      const end = Math.min(size, offset + length) - 1;
      if (end < offset) return new Uint8Array(0);
      total += end - offset + 1;
      if (total > MAX_HEADER_READ) throw new GGUFError(digest, `the header is larger than ${MAX_HEADER_READ} bytes`);
      return collect(await store.read(digest, { start: offset, end }), end - offset + 1);
    },
  };
}

function dominantTensorType(h: GGUFHeader): string {
  const byType = new Map<number, number>();
  for (const t of h.tensors) byType.set(t.type, (byType.get(t.type) ?? 0) + t.dims.reduce((a, b) => a * b, 1));
  let best: number | undefined;
  for (const [type, n] of byType) if (best === undefined || n > (byType.get(best) ?? 0)) best = type;
  return best === undefined ? "unknown" : ggmlTypeName(best);
}

function positive(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : null;
}

export function ggufFacts(h: GGUFHeader): GGUFFacts {
  const named = fileTypeName(ggufNumber(h, "general.file_type"));
  return {
    architecture: architecture(h),
    parameterCount: parameterCount(h),
    quantization: named !== "unknown" ? named : dominantTensorType(h),
    contextLength: positive(archKey(h, "context_length")),
    embeddingLength: positive(archKey(h, "embedding_length")),
    blockCount: positive(archKey(h, "block_count")),
    headerBytes: h.dataOffset,
    traits: headerTraits(h, mentionsThinking),
  };
}

/** The facts, or why the blob is not of that kind; undefined when reading failed for a passing reason (storage). */
async function readFacts(store: BlobStore, digest: string, size: number, kind: "gguf" | "text"): Promise<BlobFacts | undefined> {
  try {
    if (kind === "gguf") {
      const h = await parseGGUFHeader(blobByteSource(store, digest, size), { name: digest });
      return { kind, facts: ggufFacts(h), error: null };
    }
    const limit = Math.min(size, MAX_TEXT_BYTES);
    const bytes = limit === 0 ? Buffer.alloc(0) : await collect(await store.read(digest, { start: 0, end: limit - 1 }), limit);
    return { kind, facts: { text: bytes.toString("utf8"), truncated: size > limit }, error: null };
  } catch (e) {
    // Only a verdict on the bytes themselves is kept; a storage hiccup is retried on the next view.
    if (e instanceof GGUFError) return { kind: "gguf", facts: null, error: e.problem.slice(0, 500) };
    return undefined;
  }
}

/** GGUF facts read before the header's capability traits were kept: read again once. */
function outdated(row: { kind: string; facts: unknown }): boolean {
  return row.kind === "gguf" && row.facts !== null && typeof row.facts === "object" && !("traits" in row.facts);
}

// Concurrent page views of a new model read each header once per process.
const reading = new SingleFlight<string, Promise<BlobFacts>>();

export interface BlobRef {
  digest: string;
  size: number;
  kind: "gguf" | "text";
}

/** Facts for each blob, from the cache or read now (and cached); keyed by digest. */
export async function blobFactsFor(db: Database, store: BlobStore, refs: BlobRef[]): Promise<Map<string, BlobFacts>> {
  const out = new Map<string, BlobFacts>();
  const unique = [...new Map(refs.map((r) => [r.digest, r])).values()];
  if (unique.length === 0) return out;
  const cached = await db
    .select({ digest: blobFacts.digest, kind: blobFacts.kind, facts: blobFacts.facts, error: blobFacts.error })
    .from(blobFacts)
    .where(inArray(blobFacts.digest, unique.map((r) => r.digest)));
  for (const row of cached) if (!outdated(row)) out.set(row.digest, { kind: row.kind, facts: row.facts, error: row.error } as BlobFacts);
  const missing = unique.filter((r) => !out.has(r.digest));
  const read = await Promise.all(
    missing.map((r) =>
      reading
        .run(r.digest, async (): Promise<BlobFacts> => {
          const facts = await readFacts(store, r.digest, r.size, r.kind);
          if (!facts) return { kind: r.kind, facts: null, error: "the blob could not be read from storage" } as BlobFacts;
          // The blob may have been collected meanwhile: the foreign key then refuses the row, which is fine.
          const row = { digest: r.digest, kind: facts.kind, facts: facts.facts, error: facts.error };
          // Only an outdated row is replaced; otherwise the first reader's row stands.
          await db
            .insert(blobFacts)
            .values(row)
            .onConflictDoUpdate({ target: blobFacts.digest, set: row, setWhere: sql`${blobFacts.kind} = 'gguf' and ${blobFacts.facts} is not null and not (${blobFacts.facts} ? 'traits')` })
            .catch(() => {});
          return facts;
        })
        .then((f) => [r.digest, f] as const),
    ),
  );
  for (const [d, f] of read) out.set(d, f);
  return out;
}
