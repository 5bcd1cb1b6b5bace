/**
 * The one error type of the template engine. Its message is already in Go's
 * text/template wording (`template: :3: unexpected "}" in operand`), because
 * clients compare those strings; callers that surface it add their own prefix,
 * e.g. `template error: ${err.message}`.
 */
export class TemplateError extends Error {
  override readonly name = "TemplateError";
}

/** Thrown by built-in functions; the executor wraps it as `error calling NAME: …`. */
export class FuncError extends Error {
  override readonly name = "FuncError";
}
