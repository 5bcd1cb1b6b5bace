/**
 * Tokenizer for Go text/template source. It follows Go's lexer state by state
 * (trim markers, comments, newlines allowed inside actions, break/continue as
 * keywords) so that token boundaries, and therefore error messages and their
 * line numbers, come out the same.
 */

export type TokenType =
  | "error"
  | "bool"
  | "char" // any other printable ASCII character inside an action, e.g. ','
  | "charConstant"
  | "complex"
  | "assign"
  | "declare"
  | "eof"
  | "field"
  | "identifier"
  | "leftDelim"
  | "leftParen"
  | "number"
  | "pipe"
  | "rawString"
  | "rightDelim"
  | "rightParen"
  | "space"
  | "string"
  | "text"
  | "variable"
  // keywords
  | "block"
  | "break"
  | "continue"
  | "dot"
  | "define"
  | "else"
  | "end"
  | "if"
  | "nil"
  | "range"
  | "template"
  | "with";

export interface Token {
  type: TokenType;
  /** Offset in the source (UTF-16 index) where the token starts. */
  pos: number;
  /** Token text; for "error", the error message. */
  val: string;
  /** 1-based line of `pos`. */
  line: number;
}

const KEYWORDS: ReadonlyMap<string, TokenType> = new Map<string, TokenType>([
  [".", "dot"],
  ["block", "block"],
  ["break", "break"],
  ["continue", "continue"],
  ["define", "define"],
  ["else", "else"],
  ["end", "end"],
  ["if", "if"],
  ["range", "range"],
  ["nil", "nil"],
  ["template", "template"],
  ["with", "with"],
]);

const KEYWORD_TYPES: ReadonlySet<TokenType> = new Set(KEYWORDS.values());

export function isKeyword(type: TokenType): boolean {
  return KEYWORD_TYPES.has(type);
}

const LEFT_DELIM = "{{";
const RIGHT_DELIM = "}}";
const LEFT_COMMENT = "/*";
const RIGHT_COMMENT = "*/";

const isSpace = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\r" || c === "\n";
const ALNUM = /^[\p{L}\p{Nd}_]$/u;
const isAlphaNumeric = (c: string | undefined): boolean => c !== undefined && ALNUM.test(c);

/** `{{- ` : a minus followed by an ASCII space character. */
const hasLeftTrimMarker = (s: string, at: number): boolean => s[at] === "-" && isSpace(s[at + 1]);
/** ` -}}` : an ASCII space character followed by a minus. */
const hasRightTrimMarker = (s: string, at: number): boolean => isSpace(s[at]) && s[at + 1] === "-";

/** Go's `%#U` formatting of a code point: `U+0029 ')'`. */
export function formatRune(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch) ? `${hex} '${ch}'` : hex;
}

class Lexer {
  readonly tokens: Token[] = [];
  private pos = 0;
  private start = 0;
  private parenDepth = 0;
  // Line bookkeeping: line of `lineAt`, advanced incrementally since positions only grow.
  private lineAt = 0;
  private line = 1;

  constructor(private readonly input: string) {}

  run(): Token[] {
    this.loop();
    return this.tokens;
  }

  private lineOf(pos: number): number {
    if (pos < this.lineAt) {
      // Positions are monotonic in practice; recount defensively if not.
      this.lineAt = 0;
      this.line = 1;
    }
    for (let i = this.lineAt; i < pos; i++) if (this.input.charCodeAt(i) === 10) this.line++;
    this.lineAt = pos;
    return this.line;
  }

  private emit(type: TokenType): void {
    this.tokens.push({ type, pos: this.start, val: this.input.slice(this.start, this.pos), line: this.lineOf(this.start) });
    this.start = this.pos;
  }

  private error(message: string): "stop" {
    this.tokens.push({ type: "error", pos: this.start, val: message, line: this.lineOf(this.start) });
    return "stop";
  }

  /** Next code point (as a string), or undefined at the end. */
  private next(): string | undefined {
    if (this.pos >= this.input.length) {
      this.width = 0;
      return undefined;
    }
    const cp = this.input.codePointAt(this.pos)!;
    const ch = String.fromCodePoint(cp);
    this.width = ch.length;
    this.pos += ch.length;
    return ch;
  }
  private width = 0;
  private backup(): void {
    this.pos -= this.width;
  }
  private peek(): string | undefined {
    const ch = this.next();
    this.backup();
    return ch;
  }
  private accept(valid: string): boolean {
    const ch = this.next();
    if (ch !== undefined && valid.includes(ch)) return true;
    this.backup();
    return false;
  }
  private acceptRun(valid: string): void {
    for (;;) {
      const ch = this.next();
      if (ch === undefined || !valid.includes(ch)) break;
    }
    this.backup();
  }

  private atRightDelim(): { delim: boolean; trim: boolean } {
    const s = this.input;
    if (hasRightTrimMarker(s, this.pos) && s.startsWith(RIGHT_DELIM, this.pos + 2)) return { delim: true, trim: true };
    if (s.startsWith(RIGHT_DELIM, this.pos)) return { delim: true, trim: false };
    return { delim: false, trim: false };
  }

  private atTerminator(): boolean {
    const r = this.peek();
    if (r === undefined || isSpace(r)) return true;
    return ".,|:)(".includes(r) || r === RIGHT_DELIM[0];
  }

  /** Go's lexer is a chain of state functions; here each state returns the name of the next. */
  private loop(): void {
    type State = "text" | "leftDelim" | "comment" | "rightDelim" | "inside" | "stop";
    let state: State = "text";
    while (state !== "stop") {
      switch (state) {
        case "text":
          state = this.lexText();
          break;
        case "leftDelim":
          state = this.lexLeftDelim();
          break;
        case "comment":
          state = this.lexComment();
          break;
        case "rightDelim":
          state = this.lexRightDelim();
          break;
        case "inside":
          state = this.lexInsideAction();
          break;
      }
    }
  }

  private lexText(): "leftDelim" | "stop" {
    const s = this.input;
    const x = s.indexOf(LEFT_DELIM, this.pos);
    if (x >= 0) {
      let end = x;
      if (hasLeftTrimMarker(s, x + LEFT_DELIM.length)) {
        while (end > this.start && isSpace(s[end - 1])) end--;
      }
      this.pos = end;
      if (this.pos > this.start) this.emit("text");
      this.pos = x;
      this.start = this.pos;
      return "leftDelim";
    }
    this.pos = s.length;
    if (this.pos > this.start) this.emit("text");
    this.emit("eof");
    return "stop";
  }

  private lexLeftDelim(): "comment" | "inside" {
    this.pos += LEFT_DELIM.length;
    const trim = hasLeftTrimMarker(this.input, this.pos);
    const after = trim ? 2 : 0;
    if (this.input.startsWith(LEFT_COMMENT, this.pos + after)) {
      this.pos += after;
      this.start = this.pos;
      return "comment";
    }
    this.emit("leftDelim");
    this.pos += after;
    this.start = this.pos;
    this.parenDepth = 0;
    return "inside";
  }

  private lexComment(): "text" | "stop" {
    this.pos += LEFT_COMMENT.length;
    const i = this.input.indexOf(RIGHT_COMMENT, this.pos);
    if (i < 0) return this.error("unclosed comment");
    this.pos = i + RIGHT_COMMENT.length;
    const { delim, trim } = this.atRightDelim();
    if (!delim) return this.error("comment ends before closing delimiter");
    if (trim) this.pos += 2;
    this.pos += RIGHT_DELIM.length;
    if (trim) this.skipLeadingSpace();
    this.start = this.pos;
    return "text";
  }

  private skipLeadingSpace(): void {
    while (this.pos < this.input.length && isSpace(this.input[this.pos])) this.pos++;
  }

  private lexRightDelim(): "text" {
    const trim = hasRightTrimMarker(this.input, this.pos);
    if (trim) {
      this.pos += 2;
      this.start = this.pos;
    }
    this.pos += RIGHT_DELIM.length;
    this.emit("rightDelim");
    if (trim) {
      this.skipLeadingSpace();
      this.start = this.pos;
    }
    return "text";
  }

  private lexInsideAction(): "inside" | "rightDelim" | "stop" {
    const { delim } = this.atRightDelim();
    if (delim) {
      if (this.parenDepth === 0) return "rightDelim";
      return this.error("unclosed left paren");
    }
    const r = this.next();
    if (r === undefined) return this.error("unclosed action");
    if (isSpace(r)) {
      this.backup();
      return this.lexSpace();
    }
    switch (r) {
      case "=":
        this.emit("assign");
        return "inside";
      case ":":
        if (this.next() !== "=") return this.error("expected :=");
        this.emit("declare");
        return "inside";
      case "|":
        this.emit("pipe");
        return "inside";
      case '"':
        return this.lexQuote();
      case "`":
        return this.lexRawQuote();
      case "$":
        return this.lexVariable();
      case "'":
        return this.lexChar();
      case "(":
        this.emit("leftParen");
        this.parenDepth++;
        return "inside";
      case ")":
        this.parenDepth--;
        if (this.parenDepth < 0) return this.error(`unexpected right paren ${formatRune(r)}`);
        this.emit("rightParen");
        return "inside";
    }
    if (r === ".") {
      const c = this.input[this.pos];
      if (c === undefined || c < "0" || c > "9") return this.lexFieldOrVariable("field");
    }
    if (r === "." || r === "+" || r === "-" || (r >= "0" && r <= "9")) {
      this.backup();
      return this.lexNumber();
    }
    if (isAlphaNumeric(r)) {
      this.backup();
      return this.lexIdentifier();
    }
    const cp = r.codePointAt(0)!;
    if (cp < 0x7f && cp >= 0x20) {
      this.emit("char");
      return "inside";
    }
    return this.error(`unrecognized character in action: ${formatRune(r)}`);
  }

  private lexSpace(): "inside" | "rightDelim" {
    let n = 0;
    while (isSpace(this.peek())) {
      this.next();
      n++;
    }
    // " -}}" starts with a space: leave that space to the trim marker.
    if (hasRightTrimMarker(this.input, this.pos - 1) && this.input.startsWith(RIGHT_DELIM, this.pos + 1)) {
      this.pos--;
      if (n === 1) return "rightDelim";
    }
    this.emit("space");
    return "inside";
  }

  private lexIdentifier(): "inside" | "stop" {
    while (isAlphaNumeric(this.peek())) this.next();
    const word = this.input.slice(this.start, this.pos);
    if (!this.atTerminator()) return this.error(`bad character ${formatRune(this.peek()!)}`);
    const kw = KEYWORDS.get(word);
    if (kw !== undefined) this.emit(kw);
    else if (word === "true" || word === "false") this.emit("bool");
    else this.emit("identifier");
    return "inside";
  }

  private lexVariable(): "inside" | "stop" {
    if (this.atTerminator()) {
      this.emit("variable");
      return "inside";
    }
    return this.lexFieldOrVariable("variable");
  }

  private lexFieldOrVariable(type: "field" | "variable"): "inside" | "stop" {
    if (this.atTerminator()) {
      this.emit(type === "variable" ? "variable" : "dot");
      return "inside";
    }
    while (isAlphaNumeric(this.peek())) this.next();
    if (!this.atTerminator()) return this.error(`bad character ${formatRune(this.peek()!)}`);
    this.emit(type);
    return "inside";
  }

  private lexChar(): "inside" | "stop" {
    for (;;) {
      const r = this.next();
      if (r === "\\") {
        const e = this.next();
        if (e !== undefined && e !== "\n") continue;
        return this.error("unterminated character constant");
      }
      if (r === undefined || r === "\n") return this.error("unterminated character constant");
      if (r === "'") break;
    }
    this.emit("charConstant");
    return "inside";
  }

  private lexNumber(): "inside" | "stop" {
    if (!this.scanNumber()) return this.error(`bad number syntax: "${this.input.slice(this.start, this.pos)}"`);
    const sign = this.peek();
    if (sign === "+" || sign === "-") {
      if (!this.scanNumber() || this.input[this.pos - 1] !== "i") {
        return this.error(`bad number syntax: "${this.input.slice(this.start, this.pos)}"`);
      }
      this.emit("complex");
    } else {
      this.emit("number");
    }
    return "inside";
  }

  private scanNumber(): boolean {
    this.accept("+-");
    let digits = "0123456789_";
    if (this.accept("0")) {
      if (this.accept("xX")) digits = "0123456789abcdefABCDEF_";
      else if (this.accept("oO")) digits = "01234567_";
      else if (this.accept("bB")) digits = "01_";
    }
    this.acceptRun(digits);
    if (this.accept(".")) this.acceptRun(digits);
    if (digits.length === 11 && this.accept("eE")) {
      this.accept("+-");
      this.acceptRun("0123456789_");
    }
    if (digits.length === 23 && this.accept("pP")) {
      this.accept("+-");
      this.acceptRun("0123456789_");
    }
    this.accept("i");
    if (isAlphaNumeric(this.peek())) {
      this.next();
      return false;
    }
    return true;
  }

  private lexQuote(): "inside" | "stop" {
    for (;;) {
      const r = this.next();
      if (r === "\\") {
        const e = this.next();
        if (e !== undefined && e !== "\n") continue;
        return this.error("unterminated quoted string");
      }
      if (r === undefined || r === "\n") return this.error("unterminated quoted string");
      if (r === '"') break;
    }
    this.emit("string");
    return "inside";
  }

  private lexRawQuote(): "inside" | "stop" {
    const end = this.input.indexOf("`", this.pos);
    if (end < 0) return this.error("unterminated raw quoted string");
    this.pos = end + 1;
    this.emit("rawString");
    return "inside";
  }
}

/** Tokenizes the whole source. The list ends with an "eof" or an "error" token. */
export function lex(input: string): Token[] {
  return new Lexer(input).run();
}
