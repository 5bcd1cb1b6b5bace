/**
 * Recursive-descent parser for Go text/template. The grammar, the checks and
 * the error wording follow Go's parse package, including which line an error
 * is reported on (the line of the furthest token read so far).
 */
import type {
  ActionNode,
  ArgNode,
  BranchNode,
  CommandNode,
  ListNode,
  Node,
  NumberNode,
  PipeNode,
  StringNode,
  TemplateNode,
  VariableNode,
} from "./ast.ts";
import { nodeString } from "./ast.ts";
import { TemplateError } from "./errors.ts";
import { goQuote } from "./format.ts";
import { isKeyword, lex, type Token, type TokenType } from "./lexer.ts";

export interface ParsedTemplates {
  /** The top-level template. */
  root: ListNode;
  /** Templates created by `define` and `block`, by name. */
  defined: Map<string, ListNode>;
}

interface EndMarker {
  type: "end";
  pos: number;
}
interface ElseMarker {
  type: "else";
  pos: number;
  line: number;
}
type ListItem = Node | EndMarker | ElseMarker;

/** Parenthesised expressions nest the parser's recursion; bound it so hostile input cannot overflow the stack. */
const MAX_PAREN_DEPTH = 1000;

const markerString = (m: EndMarker | ElseMarker): string => (m.type === "end" ? "{{end}}" : "{{else}}");

function tokenString(t: Token): string {
  if (t.type === "eof") return "EOF";
  if (t.type === "error") return t.val;
  if (isKeyword(t.type)) return `<${t.val}>`;
  const runes = [...t.val];
  if (runes.length > 10) return goQuote(runes.slice(0, 10).join("")) + "...";
  return goQuote(t.val);
}

/** Go's IsEmptyTree: only blank text and comments. */
function isEmptyTree(list: ListNode): boolean {
  return list.nodes.every(
    (n) => n.type === "comment" || (n.type === "text" && n.text.trim() === "") || (n.type === "list" && isEmptyTree(n)),
  );
}

class Parser {
  private readonly tokens: Token[];
  private i = 0;
  private furthest = 0;
  private vars: string[] = ["$"];
  private rangeDepth = 0;
  private actionLine = 0;
  private parenDepth = 0;
  readonly defined = new Map<string, ListNode>();

  constructor(
    private readonly text: string,
    private readonly funcs: ReadonlySet<string>,
    private readonly name: string,
  ) {
    this.tokens = lex(text);
  }

  // ---- token stream ----

  private at(index: number): Token {
    const last = this.tokens[this.tokens.length - 1]!;
    if (index > this.furthest) this.furthest = index;
    if (index < this.tokens.length) return this.tokens[index]!;
    // Past an error token Go's lexer yields EOF forever.
    return { type: "eof", pos: this.text.length, val: "", line: last.line };
  }
  private next(): Token {
    return this.at(this.i++);
  }
  private backup(): void {
    this.i--;
  }
  private peek(): Token {
    return this.at(this.i);
  }
  private nextNonSpace(): Token {
    let t = this.next();
    while (t.type === "space") t = this.next();
    return t;
  }
  private peekNonSpace(): Token {
    const t = this.nextNonSpace();
    this.backup();
    return t;
  }

  // ---- errors ----

  private errorf(message: string): never {
    const line = this.at(Math.min(this.furthest, this.tokens.length - 1)).line;
    throw new TemplateError(`template: ${this.name}:${line}: ${message}`);
  }

  private unexpected(t: Token, context: string): never {
    if (t.type === "error") {
      let extra = "";
      if (this.actionLine !== 0 && this.actionLine !== t.line) {
        extra = ` in action started at ${this.name}:${this.actionLine}`;
        if (t.val.endsWith(" action")) extra = extra.slice(" in action".length);
      }
      this.errorf(t.val + extra);
    }
    this.errorf(`unexpected ${tokenString(t)} in ${context}`);
  }

  private expect(type: TokenType, context: string): Token {
    const t = this.nextNonSpace();
    if (t.type !== type) this.unexpected(t, context);
    return t;
  }

  // ---- trees ----

  parse(): ParsedTemplates {
    const root: ListNode = { type: "list", pos: this.peek().pos, nodes: [] };
    while (this.peek().type !== "eof") {
      if (this.peek().type === "leftDelim") {
        const delimAt = this.i;
        this.next();
        if (this.nextNonSpace().type === "define") {
          this.parseDefinition();
          continue;
        }
        this.i = delimAt;
      }
      const n = this.textOrAction();
      if (n.type === "end" || n.type === "else") this.errorf(`unexpected ${markerString(n)}`);
      root.nodes.push(n);
    }
    this.add(this.name, root);
    return { root, defined: this.defined };
  }

  private add(name: string, root: ListNode): void {
    const existing = this.defined.get(name);
    if (existing === undefined || isEmptyTree(existing)) {
      this.defined.set(name, root);
      return;
    }
    if (!isEmptyTree(root)) this.errorf(`template: multiple definition of template ${goQuote(name)}`);
  }

  /** Runs `body` as a separate tree: its own variables and range depth, like a new Go parse.Tree. */
  private inNewTree<T>(body: () => T): T {
    const saved = { vars: this.vars, rangeDepth: this.rangeDepth };
    this.vars = ["$"];
    this.rangeDepth = 0;
    try {
      return body();
    } finally {
      this.vars = saved.vars;
      this.rangeDepth = saved.rangeDepth;
    }
  }

  private parseDefinition(): void {
    const context = "define clause";
    const t = this.nextNonSpace();
    if (t.type !== "string" && t.type !== "rawString") this.unexpected(t, context);
    const name = this.unquote(t);
    this.expect("rightDelim", context);
    this.inNewTree(() => {
      const [list, end] = this.itemList();
      if (end.type !== "end") this.errorf(`unexpected ${markerString(end)} in ${context}`);
      this.add(name, list);
    });
  }

  private itemList(): [ListNode, EndMarker | ElseMarker] {
    const list: ListNode = { type: "list", pos: this.peekNonSpace().pos, nodes: [] };
    while (this.peekNonSpace().type !== "eof") {
      const n = this.textOrAction();
      if (n.type === "end" || n.type === "else") return [list, n];
      list.nodes.push(n);
    }
    this.errorf("unexpected EOF");
  }

  private textOrAction(): ListItem {
    const t = this.nextNonSpace();
    if (t.type === "text") return { type: "text", pos: t.pos, text: t.val };
    if (t.type === "leftDelim") {
      this.actionLine = t.line;
      try {
        return this.action();
      } finally {
        this.actionLine = 0;
      }
    }
    this.unexpected(t, "input");
  }

  private action(): ListItem {
    const t = this.nextNonSpace();
    switch (t.type) {
      case "block":
        return this.blockControl();
      case "break":
      case "continue":
        return this.loopControl(t);
      case "else":
        return this.elseControl();
      case "end":
        return { type: "end", pos: this.expect("rightDelim", "end").pos };
      case "if":
      case "range":
      case "with":
        return this.branchControl(t.type);
      case "template":
        return this.templateControl();
    }
    this.backup();
    const first = this.peek();
    const node: ActionNode = { type: "action", pos: first.pos, line: first.line, pipe: this.pipeline("command", "rightDelim") };
    return node;
  }

  private loopControl(t: Token): Node {
    const word = t.type === "break" ? "{{break}}" : "{{continue}}";
    const after = this.nextNonSpace();
    if (after.type !== "rightDelim") this.unexpected(after, word);
    if (this.rangeDepth === 0) this.errorf(`${word} outside {{range}}`);
    return t.type === "break" ? { type: "break", pos: t.pos } : { type: "continue", pos: t.pos };
  }

  private elseControl(): ElseMarker {
    const p = this.peekNonSpace();
    // "{{else if …}}" / "{{else with …}}": leave the keyword for the enclosing control.
    if (p.type === "if" || p.type === "with") return { type: "else", pos: p.pos, line: p.line };
    const t = this.expect("rightDelim", "else");
    return { type: "else", pos: t.pos, line: t.line };
  }

  private branchControl(context: "if" | "range" | "with"): BranchNode {
    const varsLen = this.vars.length;
    try {
      const pipe = this.pipeline(context, "rightDelim");
      if (context === "range") this.rangeDepth++;
      const [list, next] = this.itemList();
      if (context === "range") this.rangeDepth--;
      let elseList: ListNode | null = null;
      if (next.type === "else") {
        if ((context === "if" || context === "with") && this.peek().type === context) {
          this.next();
          elseList = { type: "list", pos: next.pos, nodes: [this.branchControl(context)] };
        } else {
          const [els, end] = this.itemList();
          if (end.type !== "end") this.errorf(`expected end; found ${markerString(end)}`);
          elseList = els;
        }
      }
      return { type: context, pos: pipe.pos, line: pipe.line, pipe, list, elseList };
    } finally {
      this.vars.length = varsLen;
    }
  }

  private blockControl(): TemplateNode {
    const context = "block clause";
    const t = this.nextNonSpace();
    const name = this.templateName(t, context);
    const pipe = this.pipeline(context, "rightDelim");
    this.inNewTree(() => {
      const [list, end] = this.itemList();
      if (end.type !== "end") this.errorf(`unexpected ${markerString(end)} in ${context}`);
      this.add(name, list);
    });
    return { type: "template", pos: t.pos, line: t.line, name, pipe };
  }

  private templateControl(): TemplateNode {
    const context = "template clause";
    const t = this.nextNonSpace();
    const name = this.templateName(t, context);
    let pipe: PipeNode | null = null;
    if (this.nextNonSpace().type !== "rightDelim") {
      this.backup();
      pipe = this.pipeline(context, "rightDelim");
    }
    return { type: "template", pos: t.pos, line: t.line, name, pipe };
  }

  private templateName(t: Token, context: string): string {
    if (t.type !== "string" && t.type !== "rawString") this.unexpected(t, context);
    return this.unquote(t);
  }

  // ---- pipelines ----

  private pipeline(context: string, end: "rightDelim" | "rightParen"): PipeNode {
    const first = this.peekNonSpace();
    const pipe: PipeNode = { type: "pipe", pos: first.pos, line: first.line, isAssign: false, decl: [], cmds: [] };
    for (;;) {
      const v = this.peekNonSpace();
      if (v.type !== "variable") break;
      const vAt = this.i;
      this.next();
      const after = this.peekNonSpace();
      if (after.type === "assign" || after.type === "declare") {
        pipe.isAssign = after.type === "assign";
        this.nextNonSpace();
        pipe.decl.push(this.variableNode(v));
        this.vars.push(v.val);
        break;
      }
      if (after.type === "char" && after.val === ",") {
        this.nextNonSpace();
        pipe.decl.push(this.variableNode(v));
        this.vars.push(v.val);
        if (context === "range" && pipe.decl.length < 2) {
          const t = this.peekNonSpace().type;
          if (t === "variable" || t === "rightDelim" || t === "rightParen") continue;
          this.errorf("range can only initialize variables");
        }
        this.errorf(`too many declarations in ${context}`);
      }
      // "$x" used as an argument, not declared: put it back.
      this.i = vAt;
      break;
    }
    for (;;) {
      const t = this.nextNonSpace();
      if (t.type === end) {
        this.checkPipeline(pipe, context);
        return pipe;
      }
      switch (t.type) {
        case "bool":
        case "charConstant":
        case "complex":
        case "dot":
        case "field":
        case "identifier":
        case "number":
        case "nil":
        case "rawString":
        case "string":
        case "variable":
        case "leftParen":
          this.backup();
          pipe.cmds.push(this.command());
          break;
        default:
          this.unexpected(t, context);
      }
    }
  }

  private checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`);
    pipe.cmds.slice(1).forEach((c, i) => {
      const t = c.args[0]!.type;
      if (t === "bool" || t === "dot" || t === "nil" || t === "number" || t === "string") {
        this.errorf(`non executable command in pipeline stage ${i + 2}`);
      }
    });
  }

  private command(): CommandNode {
    const cmd: CommandNode = { type: "command", pos: this.peekNonSpace().pos, args: [] };
    for (;;) {
      this.peekNonSpace();
      const operand = this.operand();
      if (operand) cmd.args.push(operand);
      const t = this.next();
      if (t.type === "space") continue;
      if (t.type === "rightDelim" || t.type === "rightParen") this.backup();
      else if (t.type !== "pipe") this.unexpected(t, "operand");
      break;
    }
    if (cmd.args.length === 0) this.errorf("empty command");
    return cmd;
  }

  private operand(): ArgNode | null {
    const node = this.term();
    if (!node) return null;
    if (this.peek().type !== "field") return node;
    const pos = this.peek().pos;
    const fields: string[] = [];
    while (this.peek().type === "field") fields.push(this.next().val.slice(1));
    switch (node.type) {
      case "field":
        return { type: "field", pos, ident: [...node.ident, ...fields] };
      case "variable":
        return { type: "variable", pos, ident: [...node.ident, ...fields] };
      case "bool":
      case "string":
      case "number":
      case "nil":
      case "dot":
        this.errorf(`unexpected . after term ${goQuote(nodeString(node))}`);
      // falls through: errorf never returns
      default:
        return { type: "chain", pos, node, field: fields };
    }
  }

  private term(): ArgNode | null {
    const t = this.nextNonSpace();
    switch (t.type) {
      case "identifier":
        if (!this.funcs.has(t.val)) this.errorf(`function ${goQuote(t.val)} not defined`);
        return { type: "identifier", pos: t.pos, name: t.val };
      case "dot":
        return { type: "dot", pos: t.pos };
      case "nil":
        return { type: "nil", pos: t.pos };
      case "variable":
        if (!this.vars.includes(t.val)) this.errorf(`undefined variable ${goQuote(t.val)}`);
        return this.variableNode(t);
      case "field":
        return { type: "field", pos: t.pos, ident: [t.val.slice(1)] };
      case "bool":
        return { type: "bool", pos: t.pos, value: t.val === "true" };
      case "charConstant":
      case "complex":
      case "number":
        return this.numberNode(t);
      case "leftParen": {
        if (this.parenDepth >= MAX_PAREN_DEPTH) this.errorf("max expression depth exceeded");
        this.parenDepth++;
        try {
          return this.pipeline("parenthesized pipeline", "rightParen");
        } finally {
          this.parenDepth--;
        }
      }
      case "string":
      case "rawString": {
        const s: StringNode = { type: "string", pos: t.pos, quoted: t.val, text: this.unquote(t) };
        return s;
      }
    }
    this.backup();
    return null;
  }

  private variableNode(t: Token): VariableNode {
    return { type: "variable", pos: t.pos, ident: [t.val] };
  }

  private numberNode(t: Token): NumberNode {
    if (t.type === "charConstant") {
      const decoded = unquoteGo(t.val.slice(1, -1), "'");
      const cps = decoded === null ? [] : [...decoded];
      if (cps.length !== 1) this.errorf(`malformed character constant: ${t.val}`);
      return { type: "number", pos: t.pos, text: t.val, value: cps[0]!.codePointAt(0)!, isInt: true };
    }
    if (t.type === "complex" || t.val.endsWith("i")) this.errorf(`complex constant ${t.val} is not supported`);
    const parsed = parseGoNumber(t.val);
    if (parsed === null) this.errorf(`illegal number syntax: ${goQuote(t.val)}`);
    return { type: "number", pos: t.pos, text: t.val, value: parsed.value, isInt: parsed.isInt };
  }

  private unquote(t: Token): string {
    if (t.type === "rawString") return t.val.slice(1, -1).replaceAll("\r", "");
    const s = unquoteGo(t.val.slice(1, -1), '"');
    if (s === null) this.errorf("invalid syntax");
    return s;
  }
}

/** Go number literal (decimal, 0x, 0o, 0b, leading-0 octal, floats, underscores) to a JS number. */
function parseGoNumber(text: string): { value: number; isInt: boolean } | null {
  let s = text;
  let sign = 1;
  if (s[0] === "+" || s[0] === "-") {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s.includes("_")) {
    if (/^_|_$|__/.test(s)) return null;
    s = s.replaceAll("_", "");
  }
  const prefixed = /^0([xXoObB])([0-9a-fA-F]+)$/.exec(s);
  if (prefixed) {
    const radix = { x: 16, o: 8, b: 2 }[prefixed[1]!.toLowerCase() as "x" | "o" | "b"];
    const digits = prefixed[2]!;
    if (![...digits].every((d) => parseInt(d, 16) < radix)) return null;
    return { value: sign * parseInt(digits, radix), isInt: true };
  }
  if (/^0[0-7]+$/.test(s)) return { value: sign * parseInt(s, 8), isInt: true };
  if (/^(0|[1-9][0-9]*)$/.test(s)) return { value: sign * Number(s), isInt: true };
  if (/^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(s)) return { value: sign * Number(s), isInt: false };
  return null;
}

/**
 * Go's strconv unquoting of the body of a "…" string or '…' character literal.
 * Byte escapes (\x, octal) are collected as bytes and decoded as UTF-8 at the end, as Go strings are bytes.
 */
export function unquoteGo(body: string, quote: '"' | "'"): string | null {
  const bytes: number[] = [];
  const enc = new TextEncoder();
  const pushCp = (cp: number): void => {
    for (const b of enc.encode(String.fromCodePoint(cp))) bytes.push(b);
  };
  const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 92 };
  for (let i = 0; i < body.length; ) {
    const cp = body.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (ch === quote || ch === "\n") return null;
    if (ch !== "\\") {
      pushCp(cp);
      i += ch.length;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return null;
    i += 2;
    if (e in simple) bytes.push(simple[e]!);
    else if (e === quote) bytes.push(quote.charCodeAt(0));
    else if (e === "x" || e === "u" || e === "U") {
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = body.slice(i, i + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) return null;
      i += n;
      const v = parseInt(hex, 16);
      if (e === "x") bytes.push(v);
      else if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) return null;
      else pushCp(v);
    } else if (e >= "0" && e <= "7") {
      const oct = body.slice(i - 1, i + 2);
      if (!/^[0-7]{3}$/.test(oct)) return null;
      const v = parseInt(oct, 8);
      if (v > 255) return null;
      bytes.push(v);
      i += 2;
    } else return null;
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Parses template source; throws TemplateError with Go's message on a syntax error. */
export function parseSource(text: string, funcs: ReadonlySet<string>, name = ""): ParsedTemplates {
  const p = new Parser(text, funcs, name);
  const parsed = p.parse();
  const root = parsed.defined.get(name) ?? parsed.root;
  parsed.defined.delete(name);
  return { root, defined: parsed.defined };
}
