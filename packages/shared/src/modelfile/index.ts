// The Modelfile: parsing, parameters and writing it back out.

export * from "./parser.ts";
export * from "./params.ts";
export * from "./render.ts";
export { goQuote, isGoPrint, trimGoSpace } from "./gotext.ts";
