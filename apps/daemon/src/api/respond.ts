// How the API answers: Ollama's `{"error": …}` bodies with its status codes, and the NDJSON
// progress streams of create/pull/push, where an error raised before the first line becomes an
// ordinary JSON error response and one raised later becomes the stream's last line (docs/daemon.md, "API conventions").

import type { Context } from "hono";
import { StatusError } from "../errors.ts";
import { readBounded } from "@corral/shared/bounded-read";

export function errorStatus(e: unknown): number {
  if (e instanceof StatusError) return e.status;
  return 500;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function jsonError(c: Context, e: unknown): Response {
  return c.json({ error: errorMessage(e) }, errorStatus(e) as 400);
}

/**
 * The most bytes a JSON request body may have. Ollama sets none; a bound keeps one request from
 * holding the daemon's memory (the text, then its parse, cost several times the bytes). It leaves
 * room for the largest legitimate body: 16 images of 32 MiB decoded in all (runner/vision/images.ts)
 * are 43 MiB of base64, plus a long conversation.
 */
export const MAX_JSON_BODY_BYTES = 128 << 20;

/** A request's body as text, refused with a 413 past MAX_JSON_BODY_BYTES before it is all read. */
export async function readBodyText(c: Context): Promise<string> {
  const tooLarge = (): StatusError => new StatusError(413, `request body is larger than ${MAX_JSON_BODY_BYTES >> 20} MiB; send fewer or smaller images, or a shorter history`);
  const declared = Number(c.req.header("content-length") ?? "");
  if (Number.isFinite(declared) && declared > MAX_JSON_BODY_BYTES) throw tooLarge();
  const body = c.req.raw.body as AsyncIterable<Uint8Array> | null;
  return (await readBounded(body, MAX_JSON_BODY_BYTES, tooLarge)).toString("utf8");
}

/** Reads a JSON body the way Ollama does: empty is `missing request body`, bad JSON a 400. */
export async function readJSON(c: Context): Promise<Record<string, unknown>> {
  const text = await readBodyText(c);
  if (text.trim() === "") throw new StatusError(400, "missing request body");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new StatusError(400, (e as Error).message);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new StatusError(400, "request body must be a JSON object");
  return v as Record<string, unknown>;
}

/** The model named in a request body: `model`, or the older `name`. */
export function modelField(body: Record<string, unknown>): string {
  const v = body["model"] ?? body["name"];
  return typeof v === "string" ? v : "";
}

type Emit<T> = (value: T) => void;

/**
 * Runs `work`, which reports progress through `emit`, and answers with NDJSON (stream) or with the
 * last progress object (no stream).
 */
export async function progressResponse<T extends object>(
  c: Context,
  stream: boolean,
  work: (emit: Emit<T>, signal: AbortSignal) => Promise<void>,
): Promise<Response> {
  const signal = c.req.raw.signal;
  if (!stream) {
    let last: T | undefined;
    try {
      await work((v) => {
        last = v;
      }, signal);
    } catch (e) {
      return jsonError(c, e);
    }
    return c.json(last ?? {});
  }

  const queue: T[] = [];
  let done = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const waitForNews = (): Promise<void> => new Promise((r) => (wake = r));
  work((v) => {
    queue.push(v);
    notify();
  }, signal).then(
    () => {
      done = true;
      notify();
    },
    (e: unknown) => {
      failure = e ?? new Error("unknown error");
      done = true;
      notify();
    },
  );

  while (queue.length === 0 && !done) await waitForNews();
  if (queue.length === 0 && failure !== undefined) return jsonError(c, failure);

  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (queue.length === 0 && !done) await waitForNews();
      if (queue.length > 0) {
        const lines = queue.splice(0).map((v) => JSON.stringify(v) + "\n").join("");
        controller.enqueue(encoder.encode(lines));
        return;
      }
      if (failure !== undefined) controller.enqueue(encoder.encode(JSON.stringify({ error: errorMessage(failure) }) + "\n"));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "application/x-ndjson" } });
}
