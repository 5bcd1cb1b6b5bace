// The GGUF vocabulary (tokenizer.ggml.*) and chat template of a Hugging Face model directory,
// from tokenizer.model (SentencePiece) or tokenizer.json (BPE or Unigram), with special token
// ids and add_bos/add_eos from tokenizer_config.json, special_tokens_map.json and config.json.

import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { ConvertError } from "./errors.ts";
import type { KVList } from "./kv-list.ts";
import { parseSentencePiece } from "./sentencepiece.ts";

const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;
const BYTE = 6;

/** Caps what is read into memory for a tokenizer file; real ones are a few tens of MB at most. */
const MAX_TOKENIZER_FILE = 256 * 1024 * 1024;

/** Transport name → path of the files uploaded with the model. */
export type FileSet = ReadonlyMap<string, string>;

interface Vocab {
  model: "llama" | "gpt2";
  tokens: string[];
  scores?: number[];
  types: number[];
  merges?: string[];
  pre?: string;
  addSpacePrefix?: boolean;
  /** Special ids the tokenizer file itself knows (SentencePiece trainer spec). */
  fallbackIds: Partial<Record<SpecialKind, number>>;
}

type SpecialKind = "bos" | "eos" | "unk" | "pad" | "sep" | "cls" | "mask";
const SPECIAL_KEYS: Record<SpecialKind, string> = { bos: "bos", eos: "eos", unk: "unknown", pad: "padding", sep: "seperator", cls: "cls", mask: "mask" };

async function readOptional(files: FileSet, name: string): Promise<Buffer | undefined> {
  const path = files.get(name);
  if (!path) return undefined;
  const { size } = await stat(path);
  if (size > MAX_TOKENIZER_FILE) throw new ConvertError(`${name}: ${size} bytes is too large for a tokenizer file`);
  return readFile(path);
}

async function readJSON(files: FileSet, name: string): Promise<Record<string, unknown> | undefined> {
  const b = await readOptional(files, name);
  if (!b) return undefined;
  try {
    const v: unknown = JSON.parse(b.toString("utf8"));
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ConvertError(`${name}: invalid JSON (${(e as Error).message})`);
  }
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

function addedTokens(tj: Record<string, unknown> | undefined): AddedToken[] {
  const list = tj?.["added_tokens"];
  if (!Array.isArray(list)) return [];
  return list.flatMap((t: Record<string, unknown>) =>
    typeof t?.["id"] === "number" && typeof t["content"] === "string" ? [{ id: t["id"], content: t["content"], special: t["special"] === true }] : [],
  );
}

const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

function fromSentencePiece(data: Uint8Array): Vocab {
  const m = parseSentencePiece(data);
  const v: Vocab = {
    model: "llama",
    tokens: m.pieces.map((p) => p.piece),
    scores: m.pieces.map((p) => p.score),
    types: m.pieces.map((p) => p.type),
    addSpacePrefix: m.addDummyPrefix,
    fallbackIds: {},
  };
  if (m.bosId >= 0) v.fallbackIds.bos = m.bosId;
  if (m.eosId >= 0) v.fallbackIds.eos = m.eosId;
  if (m.unkId >= 0) v.fallbackIds.unk = m.unkId;
  if (m.padId >= 0) v.fallbackIds.pad = m.padId;
  return v;
}

/** A BPE tokenizer.json that works on SentencePiece pieces ("▁" for spaces, byte fallback). */
function isSentencePieceStyle(tj: Record<string, unknown>, model: Record<string, unknown>): boolean {
  if (model["byte_fallback"] === true) return true;
  const text = JSON.stringify([tj["normalizer"], tj["pre_tokenizer"], tj["decoder"]]);
  return text.includes("Metaspace") || text.includes("\u2581");
}

function addsSpacePrefix(tj: Record<string, unknown>): boolean {
  const walk = (v: unknown): boolean => {
    if (!v || typeof v !== "object") return false;
    const o = v as Record<string, unknown>;
    if (o["type"] === "Prepend" && o["prepend"] === "\u2581") return true;
    if (o["type"] === "Metaspace") return o["add_prefix_space"] === true || (o["prepend_scheme"] !== undefined && o["prepend_scheme"] !== "never");
    return Object.values(o).some((x) => (Array.isArray(x) ? x.some(walk) : walk(x)));
  };
  return walk(tj["normalizer"]) || walk(tj["pre_tokenizer"]);
}

// Pre-tokenizer families are recognised by the sha256 of their Split regexes, concatenated.
const PRE_BY_REGEX_DIGEST: Record<string, string> = {
  d98f9631be1e9607a9848c26c1f9eac1aa9fc21ac6ba82a2fc0741af9780a48f: "llama-bpe",
  "1ff7f41064896984db5d1bb6ff64fa4bc29007d08c1b439e505b7392777a319e": "qwen2",
  "03df5c5863ad70781dcfdef491ead25140f895fe8010964be0daefe27be32b02": "deepseek-llm",
  "21cde974d587f0d54dc8d56b183cc1e6239600172035c68fbd6d4b9f8da0576e": "deepseek-coder",
};

function detectPre(tj: Record<string, unknown>): string {
  const pt = tj["pre_tokenizer"] as Record<string, unknown> | null | undefined;
  const list = (Array.isArray(pt?.["pretokenizers"]) ? pt!["pretokenizers"] : pt ? [pt] : []) as Array<Record<string, unknown>>;
  const h = createHash("sha256");
  let regexes = 0;
  for (const p of list) {
    const pattern = p["pattern"] as Record<string, unknown> | undefined;
    if (p["type"] === "Split" && typeof pattern?.["Regex"] === "string") {
      h.update(pattern["Regex"]);
      regexes++;
    }
  }
  if (regexes > 0) return PRE_BY_REGEX_DIGEST[h.digest("hex")] ?? "default";
  // A lone ByteLevel pre-tokenizer with its built-in regex is GPT-2's.
  if (list.length === 1 && list[0]!["type"] === "ByteLevel" && list[0]!["use_regex"] !== false) return "gpt-2";
  return "default";
}

function fromTokenizerJSON(tj: Record<string, unknown>): Vocab {
  const model = tj["model"] as Record<string, unknown> | undefined;
  if (!model || typeof model !== "object") throw new ConvertError(`tokenizer.json: missing "model"`);
  const added = addedTokens(tj);
  const unkContent = typeof model["unk_token"] === "string" ? model["unk_token"] : undefined;
  if (model["type"] === "BPE") {
    const vocab = model["vocab"];
    if (!vocab || typeof vocab !== "object") throw new ConvertError(`tokenizer.json: model.vocab must be an object of token → id`);
    const byId = new Map<number, string>();
    for (const [tok, id] of Object.entries(vocab as Record<string, unknown>)) {
      if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) throw new ConvertError(`tokenizer.json: model.vocab[${JSON.stringify(tok)}] must be a token id, got ${JSON.stringify(id)}`);
      byId.set(id, tok);
    }
    for (const a of added) byId.set(a.id, a.content);
    const n = Math.max(-1, ...byId.keys()) + 1;
    const tokens: string[] = [];
    const types: number[] = [];
    const addedById = new Map(added.map((a) => [a.id, a]));
    const spm = isSentencePieceStyle(tj, model);
    const scores: number[] = [];
    let rank = 0;
    for (let i = 0; i < n; i++) {
      const tok = byId.get(i);
      const a = addedById.get(i);
      if (tok === undefined) {
        tokens.push(`[PAD${i}]`);
        types.push(UNUSED);
        scores.push(0);
      } else if (a) {
        tokens.push(tok);
        types.push(tok === unkContent ? UNKNOWN : a.special ? CONTROL : USER_DEFINED);
        scores.push(0);
      } else if (spm && BYTE_PIECE.test(tok)) {
        tokens.push(tok);
        types.push(BYTE);
        scores.push(0);
      } else {
        tokens.push(tok);
        types.push(tok === unkContent ? UNKNOWN : NORMAL);
        // SentencePiece ranks pieces by score and merges the best-scoring pair first; vocabulary
        // order is merge order, so descending scores reproduce the BPE merges.
        scores.push(-rank++);
      }
    }
    if (spm) return { model: "llama", tokens, scores, types, addSpacePrefix: addsSpacePrefix(tj), fallbackIds: {} };
    const raw = model["merges"];
    const merges = Array.isArray(raw) ? raw.map((m: unknown) => (Array.isArray(m) ? m.join(" ") : String(m))) : [];
    return { model: "gpt2", tokens, types, merges, pre: detectPre(tj), fallbackIds: {} };
  }
  if (model["type"] === "Unigram") {
    const vocab = model["vocab"];
    if (!Array.isArray(vocab)) throw new ConvertError(`tokenizer.json: model.vocab of a Unigram tokenizer must be a list of [piece, score]`);
    const unkId = typeof model["unk_id"] === "number" ? model["unk_id"] : -1;
    const addedById = new Map(added.map((a) => [a.id, a]));
    const tokens: string[] = [];
    const scores: number[] = [];
    const types: number[] = [];
    vocab.forEach((e: unknown, i) => {
      if (!Array.isArray(e) || typeof e[0] !== "string" || typeof e[1] !== "number") throw new ConvertError(`tokenizer.json: model.vocab[${i}] must be [piece, score]`);
      const a = addedById.get(i);
      tokens.push(e[0]);
      scores.push(e[1]);
      types.push(i === unkId ? UNKNOWN : a ? (a.special ? CONTROL : USER_DEFINED) : model["byte_fallback"] === true && BYTE_PIECE.test(e[0]) ? BYTE : NORMAL);
    });
    return { model: "llama", tokens, scores, types, addSpacePrefix: addsSpacePrefix(tj), fallbackIds: unkId >= 0 ? { unk: unkId } : {} };
  }
  throw new ConvertError(`tokenizer.json: model type ${JSON.stringify(model["type"])} is not supported; supported: BPE, Unigram`);
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Record<string, unknown>)["content"] === "string") return (v as Record<string, string>)["content"];
  return undefined;
}

function firstId(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
  if (Array.isArray(v)) return firstId(v[0]);
  return undefined;
}

function chatTemplateOf(tc: Record<string, unknown> | undefined): string | undefined {
  const t = tc?.["chat_template"];
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t.find((e: Record<string, unknown>) => e?.["name"] === "default") ?? t[0];
    if (named && typeof named["template"] === "string") return named["template"];
  }
  return undefined;
}

/**
 * Writes the tokenizer keys into `kv`, fitted to `vocabSize` rows of the embedding (extra pieces
 * are dropped, missing ones padded as unused, as llama.cpp's converter does).
 */
export async function tokenizerKV(files: FileSet, config: Record<string, unknown>, vocabSize: number, kv: KVList): Promise<void> {
  const tj = await readJSON(files, "tokenizer.json");
  const tc = await readJSON(files, "tokenizer_config.json");
  const stm = await readJSON(files, "special_tokens_map.json");
  const spmBytes = await readOptional(files, "tokenizer.model");

  let vocab: Vocab;
  if (spmBytes) {
    vocab = fromSentencePiece(spmBytes);
    // Tokens added on top of the SentencePiece model (tokenizer.json, else added_tokens.json).
    let extra = addedTokens(tj);
    if (extra.length === 0) {
      const at = await readJSON(files, "added_tokens.json");
      extra = Object.entries(at ?? {}).flatMap(([content, id]) => (typeof id === "number" ? [{ id, content, special: true }] : []));
    }
    for (const a of extra.sort((x, y) => x.id - y.id)) {
      if (a.id < vocab.tokens.length) {
        if (vocab.tokens[a.id] !== a.content) {
          vocab.tokens[a.id] = a.content;
          vocab.types[a.id] = a.special ? CONTROL : USER_DEFINED;
        }
      } else if (a.id === vocab.tokens.length) {
        vocab.tokens.push(a.content);
        vocab.scores!.push(-1000);
        vocab.types.push(a.special ? CONTROL : USER_DEFINED);
      }
    }
  } else if (tj) {
    vocab = fromTokenizerJSON(tj);
  } else {
    throw new ConvertError("no tokenizer: expected tokenizer.json or tokenizer.model next to config.json");
  }

  if (vocab.tokens.length > vocabSize) {
    vocab.tokens.length = vocabSize;
    vocab.types.length = vocabSize;
    if (vocab.scores) vocab.scores.length = vocabSize;
  }
  for (let i = vocab.tokens.length; i < vocabSize; i++) {
    vocab.tokens.push(`[PAD${i}]`);
    vocab.types.push(UNUSED);
    vocab.scores?.push(-1000);
  }
  const seen = new Set<string>();
  for (let i = 0; i < vocab.tokens.length; i++) {
    // llama.cpp maps token text to id; a duplicate would make one unreachable and is refused.
    if (seen.has(vocab.tokens[i]!)) {
      vocab.tokens[i] = `[DUP${i}]`;
      vocab.types[i] = UNUSED;
    }
    seen.add(vocab.tokens[i]!);
  }

  kv.str("tokenizer.ggml.model", vocab.model);
  if (vocab.pre !== undefined) kv.str("tokenizer.ggml.pre", vocab.pre);
  kv.strings("tokenizer.ggml.tokens", vocab.tokens);
  if (vocab.scores) kv.f32s("tokenizer.ggml.scores", vocab.scores);
  kv.i32s("tokenizer.ggml.token_type", vocab.types);
  if (vocab.merges && vocab.merges.length > 0) kv.strings("tokenizer.ggml.merges", vocab.merges);
  if (vocab.addSpacePrefix !== undefined) kv.bool("tokenizer.ggml.add_space_prefix", vocab.addSpacePrefix);

  const idOf = new Map<string, number>();
  vocab.tokens.forEach((t, i) => {
    if (!idOf.has(t)) idOf.set(t, i);
  });
  const generation = await readJSON(files, "generation_config.json");
  const special: Partial<Record<SpecialKind, number>> = {};
  for (const kind of Object.keys(SPECIAL_KEYS) as SpecialKind[]) {
    const content = tokenContent(tc?.[`${kind}_token`]) ?? tokenContent(stm?.[`${kind}_token`]);
    let id = content !== undefined ? idOf.get(content) : undefined;
    id ??= firstId(config[`${kind}_token_id`]) ?? firstId(generation?.[`${kind}_token_id`]) ?? vocab.fallbackIds[kind];
    if (id !== undefined && id < vocabSize) {
      special[kind] = id;
      kv.u32(`tokenizer.ggml.${SPECIAL_KEYS[kind]}_token_id`, id);
    }
  }

  let addBos = typeof tc?.["add_bos_token"] === "boolean" ? (tc["add_bos_token"] as boolean) : undefined;
  let addEos = typeof tc?.["add_eos_token"] === "boolean" ? (tc["add_eos_token"] as boolean) : undefined;
  const post = tj?.["post_processor"] as Record<string, unknown> | null | undefined;
  if (post && post["type"] === "TemplateProcessing" && Array.isArray(post["single"])) {
    const single = post["single"] as Array<Record<string, { id?: string }>>;
    const specialAt = (i: number): number | undefined => {
      const s = single[i]?.["SpecialToken"]?.id;
      return s !== undefined ? idOf.get(s) : undefined;
    };
    addBos ??= special.bos !== undefined && specialAt(0) === special.bos;
    addEos ??= special.eos !== undefined && specialAt(single.length - 1) === special.eos;
  }
  if (addBos !== undefined) kv.bool("tokenizer.ggml.add_bos_token", addBos);
  if (addEos !== undefined) kv.bool("tokenizer.ggml.add_eos_token", addEos);

  let template = chatTemplateOf(tc);
  if (template === undefined) template = (await readOptional(files, "chat_template.jinja"))?.toString("utf8");
  if (template === undefined) template = chatTemplateOf(await readJSON(files, "chat_template.json"));
  if (template) kv.str("tokenizer.chat_template", template);
}
