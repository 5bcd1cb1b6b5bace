// A checkpoint, tokenizer or adapter that cannot be converted. The message names the file and
// the field or tensor at fault; create turns it into a 400 answer.

export class ConvertError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConvertError";
  }
}
