/** A failure whose message is shown to the user as `Error: <message>` with exit status 1. */
export class CLIError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CLIError";
  }
}
