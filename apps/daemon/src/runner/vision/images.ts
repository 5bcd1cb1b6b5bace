// Images in generate and chat requests (docs/vision.md, "Requests"): decoding the base64 the API
// carries, within the request's bounds, and placing each image in the prompt. The prompt is rendered
// with Ollama's tags: each message's images become `[img-N]` in front of its text, or take the
// place of the `[img]`s the text already holds; after truncation the tags that remain are swapped
// for the vision worker's marker, and their images are sent in the same order.

import { StatusError } from "../../errors.ts";
import type { ChatMessage } from "../../template/index.ts";

/** The most images one request may carry, earlier chat messages' included. */
export const MAX_IMAGES_PER_REQUEST = 16;
/** The most bytes all of a request's images may take, decoded. */
export const MAX_IMAGE_BYTES_PER_REQUEST = 32 * 1024 * 1024;
/** The largest picture, width × height, the worker decodes (its header is read first). */
export const MAX_IMAGE_PIXELS = 4096 * 4096;
/**
 * The tokens an image is counted as while a conversation is truncated to the context window, as
 * Ollama counts one; the worker's own count is exact, and a prompt that does not fit is a 400.
 */
export const IMAGE_TOKENS_ESTIMATE = 768;

/** Standard base64 with padding; line breaks are ignored, as Go's decoder ignores them. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A request's images as bytes, checked against the bounds before any is decoded: how many there
 * are, then the size their base64 stands for.
 */
export function decodeImages(images: readonly unknown[]): Buffer[] {
  if (images.length > MAX_IMAGES_PER_REQUEST) {
    throw new StatusError(400, `the request has ${images.length} images, more than the ${MAX_IMAGES_PER_REQUEST} allowed; send fewer images`);
  }
  let total = 0;
  const texts = images.map((img, i) => {
    if (typeof img !== "string") throw new StatusError(400, `images[${i}] is not a string; send each image as the base64 of its file`);
    const clean = img.replace(/[\r\n]/g, "");
    total += Math.floor((clean.length * 3) / 4);
    if (total > MAX_IMAGE_BYTES_PER_REQUEST) {
      throw new StatusError(400, `the request's images are more than ${MAX_IMAGE_BYTES_PER_REQUEST} bytes; send smaller images`);
    }
    if (!BASE64.test(clean)) throw new StatusError(400, `images[${i}] is not valid base64; send each image as the base64 of its file`);
    return clean;
  });
  return texts.map((t) => Buffer.from(t, "base64"));
}

/** The text with one `[img-N]` per image, numbered from `first`, as Ollama tags a message. */
export function tagText(text: string, count: number, first: number): string {
  let prefix = "";
  let out = text;
  for (let i = 0; i < count; i++) {
    const tag = `[img-${first + i}]`;
    if (out.includes("[img]")) out = out.replace("[img]", tag);
    else prefix += tag;
  }
  return prefix + out;
}

/** The messages with their images tagged, numbered in order across the conversation. */
export function tagMessages(messages: readonly ChatMessage[]): ChatMessage[] {
  let n = 0;
  return messages.map((m) => {
    const count = m.images?.length ?? 0;
    if (count === 0) return m;
    const content = tagText(m.content, count, n);
    n += count;
    return { ...m, content };
  });
}

/** Counts a rendered prompt's tokens with each image tag counted as an image. */
export function countWithImages(countTokens: (text: string) => number): (text: string) => number {
  return (text) => countTokens(text) + (text.match(/\[img-\d+\]/g)?.length ?? 0) * IMAGE_TOKENS_ESTIMATE;
}

/** The prompt with each tag of a known image replaced by `marker`, and those images in prompt order. */
export function placeImages(prompt: string, images: readonly Buffer[], marker: string): { prompt: string; images: Buffer[] } {
  const placed: Buffer[] = [];
  const text = prompt.replace(/\[img-(\d+)\]/g, (tag, n: string) => {
    const image = images[Number(n)];
    if (!image) return tag;
    placed.push(image);
    return marker;
  });
  return { prompt: text, images: placed };
}
