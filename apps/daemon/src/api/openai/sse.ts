// The two stream formats met here: the native routes' NDJSON, read line by line, and OpenAI's
// Server-Sent Events, `data: <json>\n\n` per chunk, ending with `data: [DONE]\n\n` (the Responses
// API names each event instead, `event: <type>\n` before its data, and has no [DONE]).

import { LineTooLongError, ndjsonLines } from "../../ndjson.ts";
import { errorBody } from "./errors.ts";

/** Marks the end of an OpenAI stream. */
export const DONE = "[DONE]";

/** An event with a name, `event: <name>` before its `data:` line, as the Responses API sends every event. */
export class NamedEvent {
  constructor(
    readonly event: string,
    readonly data: object,
  ) {}
}

export type SSEEvent = object | typeof DONE;

function frame(e: SSEEvent): string {
  if (e === DONE) return `data: ${DONE}\n\n`;
  if (e instanceof NamedEvent) return `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
  return `data: ${JSON.stringify(e)}\n\n`;
}

/** No native line comes near this; a body without newlines must not grow a buffer forever. */
const MAX_LINE = 64 << 20;

/** Parses an NDJSON body into its objects; cancels the body when the reader stops early. */
export async function* readNDJSON(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Record<string, unknown>> {
  if (!body) return;
  const parse = (line: string): Record<string, unknown> => {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`invalid line in the native response: ${(e as Error).message}`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("invalid line in the native response: not a JSON object");
    return v as Record<string, unknown>;
  };
  try {
    for await (const line of ndjsonLines(body, MAX_LINE)) yield parse(line);
  } catch (e) {
    if (e instanceof LineTooLongError) throw new Error(`invalid native response: ${e.message}`);
    throw e;
  }
}

/**
 * Answers with the events as SSE. A failure while producing them becomes a last `data:` event
 * holding an OpenAI error object (which OpenAI's clients raise), since the status is already sent.
 */
export function sseResponse(events: AsyncIterable<SSEEvent>): Response {
  const encoder = new TextEncoder();
  const it = events[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await it.next();
        if (next.done) {
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(frame(next.value)));
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(errorBody(500, message))}\n\n`));
        controller.close();
      }
    },
    async cancel() {
      await it.return?.();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" } });
}

/** A native `{"error": "…"}` line ends the stream: it becomes an exception, then an SSE error event. */
export function throwIfErrorLine(line: Record<string, unknown>): void {
  if ("error" in line) throw new Error(typeof line["error"] === "string" ? line["error"] : JSON.stringify(line["error"]));
}
