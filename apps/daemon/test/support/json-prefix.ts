// Whether a text is the beginning of some JSON document: what a JSON grammar guarantees of an
// answer cut short by num_predict, which JSON.parse alone cannot check.

const LITERALS = ["true", "false", "null"];
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const WHITESPACE = new Set([" ", "\t", "\n", "\r"]);

type Expect = "value" | "valueOrClose" | "key" | "keyOrClose" | "colon" | "commaOrClose" | "end";

export function isJSONPrefix(text: string): boolean {
  const stack: Array<"{" | "["> = [];
  let expect = "value" as Expect;
  let i = 0;
  const afterValue = (): void => {
    expect = stack.length > 0 ? "commaOrClose" : "end";
  };
  /** Index after the string that opens at i, -1 when the text ends inside it, -2 when it is invalid. */
  const stringEnd = (from: number): number => {
    for (let j = from + 1; j < text.length; j++) {
      const c = text[j]!;
      if (c === '"') return j + 1;
      if (c.charCodeAt(0) < 0x20) return -2;
      if (c === "\\") {
        const e = text[j + 1];
        if (e === undefined) return -1;
        if (e === "u") {
          const hex = text.slice(j + 2, j + 6);
          if (!/^[0-9a-fA-F]*$/.test(hex)) return -2;
          if (hex.length < 4) return -1;
          j += 5;
        } else if ('"\\/bfnrt'.includes(e)) j++;
        else return -2;
      }
    }
    return -1;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (WHITESPACE.has(c)) {
      i++;
      continue;
    }
    if (expect === "end") return false;
    if (expect === "colon") {
      if (c !== ":") return false;
      expect = "value";
      i++;
    } else if (expect === "commaOrClose") {
      const top = stack[stack.length - 1];
      if (c === ",") expect = top === "{" ? "key" : "value";
      else if ((c === "}" && top === "{") || (c === "]" && top === "[")) {
        stack.pop();
        afterValue();
      } else return false;
      i++;
    } else if (expect === "key" || expect === "keyOrClose") {
      if (c === "}" && expect === "keyOrClose") {
        stack.pop();
        afterValue();
        i++;
        continue;
      }
      if (c !== '"') return false;
      const end = stringEnd(i);
      if (end < 0) return end === -1;
      i = end;
      expect = "colon";
    } else {
      if (c === "]" && expect === "valueOrClose") {
        stack.pop();
        afterValue();
        i++;
      } else if (c === "{" || c === "[") {
        stack.push(c);
        expect = c === "{" ? "keyOrClose" : "valueOrClose";
        i++;
      } else if (c === '"') {
        const end = stringEnd(i);
        if (end < 0) return end === -1;
        i = end;
        afterValue();
      } else {
        const token = /^[-+.\deEa-z]*/.exec(text.slice(i))![0];
        if (token === "") return false;
        const atEnd = i + token.length === text.length;
        const complete = LITERALS.includes(token) || NUMBER.test(token);
        // A number or literal the text ends in may still be growing.
        if (atEnd) return complete || LITERALS.some((l) => l.startsWith(token)) || NUMBER.test(token + "0");
        if (!complete) return false;
        i += token.length;
        afterValue();
      }
    }
  }
  return true;
}
