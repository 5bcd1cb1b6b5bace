// Image paths in `corral run` prompts (docs/vision.md, "Requests"), as Ollama's CLI finds them for a
// model with the vision capability: words that look like a path to a .jpg, .jpeg, .png, .webp or
// .wav file (starting with /, ./ or \, spaces escaped with a backslash) are read, sent as images and
// taken out of the prompt; a path that names no file stays as text.

import { open } from "node:fs/promises";
import { CLIError } from "./errors.ts";

/** Ollama's limit on one file. */
const MAX_FILE_BYTES = 100 * 1024 * 1024;

const FILE_NAMES = /(?:[a-zA-Z]:)?(?:\.\/|\/|\\)[\S\\ ]+?\.(?:jpg|jpeg|png|webp|wav)\b/gi;

/** The words of `input` that may name an image file. */
export function extractFileNames(input: string): string[] {
  return input.match(FILE_NAMES) ?? [];
}

/** A path as typed in a shell, its backslash escapes removed. */
export function normalizeFilePath(path: string): string {
  return path.replace(/\\([ ()[\]{}$&;'\\*?~])/g, "$1");
}

/** The kind of file its first bytes show, among those Ollama's CLI sends. */
function contentType(head: Buffer): string | undefined {
  if (head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return "image/png";
  if (head.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))) return "image/jpeg";
  if (head.toString("latin1", 0, 4) === "RIFF" && head.toString("latin1", 8, 12) === "WEBP") return "image/webp";
  if (head.toString("latin1", 0, 4) === "RIFF" && head.toString("latin1", 8, 12) === "WAVE") return "audio/wave";
  return undefined;
}

/** The file's bytes; undefined when there is no such file. */
async function readImageFile(path: string): Promise<Buffer | undefined> {
  const f = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined;
    throw new CLIError(`couldn't process file ${JSON.stringify(path)}: ${e.message}`);
  });
  if (!f) return undefined;
  try {
    const info = await f.stat();
    if (!info.isFile()) return undefined;
    if (info.size > MAX_FILE_BYTES) throw new CLIError(`couldn't process file ${JSON.stringify(path)}: file size exceeds maximum limit (100MB)`);
    const data = await f.readFile();
    if (!contentType(data.subarray(0, 512))) throw new CLIError(`couldn't process file ${JSON.stringify(path)}: not a PNG, JPEG or WebP image`);
    return data;
  } finally {
    await f.close();
  }
}

/** The prompt without the image paths it named, and those images as base64. */
export async function extractFileData(input: string, err: { write(text: string): unknown }): Promise<{ prompt: string; images: string[] }> {
  const images: string[] = [];
  let prompt = input;
  for (const fp of extractFileNames(input)) {
    const path = normalizeFilePath(fp);
    const data = await readImageFile(path);
    if (!data) continue;
    err.write(`Added ${path.toLowerCase().endsWith(".wav") ? "audio" : "image"} '${path}'\n`);
    prompt = prompt.replaceAll(`'${path}'`, "").replaceAll(`'${fp}'`, "").replaceAll(fp, "");
    images.push(data.toString("base64"));
  }
  return { prompt: prompt.trim(), images };
}
