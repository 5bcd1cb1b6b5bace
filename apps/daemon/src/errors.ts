// Errors that carry the HTTP status Ollama answers with, so the store and create code can say
// "this is the caller's fault" without knowing about HTTP.

export class StatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "StatusError";
  }
}

export const badRequest = (message: string): StatusError => new StatusError(400, message);
export const notFound = (message: string): StatusError => new StatusError(404, message);

/** A progress line of a streamed operation (create, pull, push), as Ollama writes them. */
export interface Progress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}
