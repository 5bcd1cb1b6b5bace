// Reading NDJSON, one JSON value per line, from a stream as the native API sends its progress and
// answers: the CLI reads it from the daemon, the OpenAI layer from the native routes. The last
// line may lack its newline; blank lines are skipped.

/** A line grew past the limit without a newline: the stream is not NDJSON, or is hostile. */
export class LineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`a line longer than ${limit} bytes`);
    this.name = "LineTooLongError";
  }
}

/**
 * The non-blank lines of `chunks`, trimmed. Stopping early returns the source's iterator, which
 * for a web ReadableStream cancels it. Text is decoded as UTF-8 across chunk boundaries.
 */
export async function* ndjsonLines(chunks: AsyncIterable<Uint8Array | string>, maxLine = Infinity): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of chunks) {
    buffer += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line) yield line;
    }
    if (buffer.length > maxLine) throw new LineTooLongError(maxLine);
  }
  const rest = (buffer + decoder.decode()).trim();
  if (rest) yield rest;
}
