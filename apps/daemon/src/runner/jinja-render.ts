// Rendering a Hugging Face Jinja chat template (@huggingface/jinja) within a RenderBudget
// (template/limits.ts). The package's Interpreter sends every node through its public evaluate();
// a subclass counts each node there and checks the values coming back. The few operations that
// build a large value in one step (range(), indent, join, tojson, replace, split, printing or
// concatenating a list, sorting) are checked before they run, from their already evaluated
// operands: the subclass evaluates those itself and hands them to the package as precomputed
// nodes, so nothing is evaluated twice and the package still does the work.

import { Environment, Interpreter, type Template } from "@huggingface/jinja";
import { RenderBudget } from "../template/index.ts";

/** The package exports neither its AST nor its value classes; these are the views of them used here. */
type Value = ReturnType<Interpreter["evaluate"]>;
type Node = NonNullable<Parameters<Interpreter["evaluate"]>[0]>;
type Program = Template["parsed"];

interface Ident extends Node {
  value: string;
}
interface CallNode extends Node {
  callee: Node;
  args: Node[];
}
interface FilterNode extends Node {
  operand: Node;
  filter: Node;
}
interface FilterStatementNode extends Node {
  filter: Node;
  body: Node[];
}
interface BinaryNode extends Node {
  operator: { value: string };
  left: Node;
  right: Node;
}
interface MemberNode extends Node {
  object: Node;
}
interface ForNode extends Node {
  iterable: Node;
  body: Node[];
}
interface SelectNode extends Node {
  lhs: Node;
}
interface KeywordArgNode extends Node {
  key: Ident;
  value: Node;
}
interface SpreadNode extends Node {
  argument: Node;
}

/** A node that stands for a value already evaluated. */
const PRECOMPUTED = "corral:Precomputed";
interface Precomputed extends Node {
  value: Value;
}
const precomputed = (value: Value): Precomputed => ({ type: PRECOMPUTED, value });

/** Work a list item counts as: a runtime value is an object of a few dozen bytes. */
const ITEM_WORK = 16;
/** Steps a loop iteration counts as: each one allocates its `loop` variables and a scope. */
const ITERATION_STEPS = 4;
/** Characters any scalar (number, boolean, none) prints as, at most. */
const SCALAR_TEXT = 32;
/** Quotes, brackets, commas, "[object Map]": what an item adds to a list's text besides separators and indentation. */
const ITEM_TEXT = 16;
/** Deeper than this, a value's text is treated as unbounded (the package would overflow the stack on it anyway). */
const MAX_NESTING = 1000;

const isString = (v: Value): v is Value & { value: string } => v.type === "StringValue";
const isList = (v: Value): v is Value & { value: Value[] } => v.type === "ArrayValue" || v.type === "TupleValue";
const isMapping = (v: Value): v is Value & { value: Map<string, Value> } =>
  v.type === "ObjectValue" || v.type === "KeywordArgumentsValue" || v.type === "NamespaceValue";
const isInteger = (v: Value | undefined): v is Value & { value: number } => v?.type === "IntegerValue";

/**
 * Upper bounds on the text the package can make of values: toString, toJSON (with any
 * indentation and separators), join, and JavaScript's Array toString all fit under them. Shared
 * structure is measured once (a list may hold the same large list many times over), and a
 * namespace that contains itself is unbounded.
 */
class TextBound {
  private readonly heights = new Map<Value, number>();
  private readonly sizes = new Map<Value, number>();
  private visited = 0;

  constructor(
    private readonly indent = 0,
    private readonly separators = 0,
  ) {}

  /** Nodes looked at so far, for the budget. */
  get work(): number {
    return this.visited;
  }

  of(v: Value): number {
    const height = this.height(v, 0);
    if (!Number.isFinite(height)) return Infinity;
    return this.size(v, ITEM_TEXT + this.separators + this.indent * (height + 1));
  }

  private height(v: Value, depth: number): number {
    if (!isList(v) && !isMapping(v)) return 0;
    const known = this.heights.get(v);
    if (known !== undefined) return known;
    if (depth > MAX_NESTING) return Infinity;
    this.visited++;
    this.heights.set(v, Infinity); // still being measured: meeting it again is a cycle
    let h = 0;
    for (const c of isList(v) ? v.value : v.value.values()) h = Math.max(h, this.height(c, depth + 1) + 1);
    this.heights.set(v, h);
    return h;
  }

  private size(v: Value, perItem: number): number {
    if (isString(v)) return 6 * v.value.length + 2; // JSON escapes a control character in six
    if (v.type === "FunctionValue") return String(v.value).length;
    if (!isList(v) && !isMapping(v)) return SCALAR_TEXT;
    const known = this.sizes.get(v);
    if (known !== undefined) return known;
    let n = 2 + perItem;
    if (isList(v)) for (const c of v.value) n += this.size(c, perItem) + perItem;
    else for (const [k, c] of v.value) n += 6 * k.length + 2 + this.size(c, perItem) + perItem;
    this.sizes.set(v, n);
    return n;
  }
}

/** Positional and keyword arguments, evaluated. */
interface Arguments {
  positional: Value[];
  keyword: Map<string, Value>;
}

class BoundedInterpreter extends Interpreter {
  /** Values already counted as work (input and looked-up values come back many times). */
  private readonly counted = new WeakSet<Value>();
  /** The loops being run, innermost last, with the length of text their iterations made. */
  private readonly loops: { body: Node[]; length: number }[] = [];
  private depth = 0;

  constructor(
    env: Environment,
    private readonly budget: RenderBudget,
  ) {
    super(env);
  }

  override evaluate(node: Node | undefined, env: Environment): Value {
    if (node === undefined) return super.evaluate(node, env);
    if (node.type === PRECOMPUTED) return (node as Precomputed).value;
    this.budget.step();
    switch (node.type) {
      case "CallExpression":
      case "CallStatement":
        return this.nested(() => this.account(super.evaluate(node, env)));
      case "For":
        return this.loop(node as ForNode, env);
      case "FilterExpression": {
        const f = node as FilterNode;
        return this.filter(this.evaluate(f.operand, env), f.filter, env);
      }
      case "FilterStatement": {
        const f = node as FilterStatementNode;
        return this.filter(this.block(f.body, env), f.filter, env);
      }
      case "BinaryExpression":
        return this.binary(node as BinaryNode, env);
      case "MemberExpression":
        return this.member(node as MemberNode, env);
    }
    return this.account(super.evaluate(node, env));
  }

  /**
   * The package's evaluateBlock, with the text checked as it accumulates: a block (and a loop,
   * iteration by iteration) could otherwise grow past any bound before it returns. Printing a
   * list or mapping turns it into JSON, so its size is bounded before that happens.
   */
  block(statements: Node[], env: Environment): Value {
    const loop = this.loops[this.loops.length - 1];
    const iteration = loop?.body === statements;
    this.budget.step(iteration ? ITERATION_STEPS : 1);
    let result = "";
    for (const statement of statements) {
      const last = this.evaluate(statement, env);
      if (last.type === "NullValue" || last.type === "UndefinedValue") continue;
      this.budget.checkOutput(result.length + (isString(last) ? last.value.length : this.textOf(last)));
      result += last.toString();
    }
    if (iteration) {
      loop.length += result.length;
      this.budget.checkOutput(loop.length);
    }
    return super.evaluate({ type: "StringLiteral", value: result } as Node, env);
  }

  /**
   * The package prepares every item of a loop before the first iteration, so the items count as
   * work even when the loop breaks early; then each iteration counts as steps, and the text the
   * iterations make is checked as it accumulates (in block()).
   */
  private loop(node: ForNode, env: Environment): Value {
    const select = node.iterable.type === "SelectExpression" ? (node.iterable as SelectNode) : undefined;
    const items = this.evaluate(select ? select.lhs : node.iterable, env);
    if (isList(items)) this.budget.charge(items.value.length * ITEM_WORK);
    else if (isMapping(items)) this.budget.charge(items.value.size * ITEM_WORK);
    const iterable = select ? ({ ...select, lhs: precomputed(items) } as Node) : precomputed(items);
    this.loops.push({ body: node.body, length: 0 });
    try {
      return this.account(super.evaluate({ ...node, iterable } as Node, env));
    } finally {
      this.loops.pop();
    }
  }

  private nested<T>(run: () => T): T {
    this.budget.checkDepth(++this.depth);
    try {
      return run();
    } finally {
      this.depth--;
    }
  }

  /** Checks a value the package made, and counts a new string or list as work. */
  private account(v: Value): Value {
    if (isString(v)) {
      this.budget.checkValue(v.value.length);
      if (!this.counted.has(v)) {
        this.counted.add(v);
        this.budget.charge(v.value.length);
      }
    } else if (isList(v)) {
      this.budget.checkItems(v.value.length);
      if (!this.counted.has(v)) {
        this.counted.add(v);
        this.budget.charge(v.value.length * ITEM_WORK);
      }
    }
    return v;
  }

  /** A bound on the text of `v`; measuring it is work too. */
  private textOf(v: Value, indent = 0, separators = 0): number {
    if (isString(v)) return v.value.length;
    if (!isList(v) && !isMapping(v)) return v.type === "FunctionValue" ? String(v.value).length : SCALAR_TEXT;
    const bound = new TextBound(indent, separators);
    const n = bound.of(v);
    this.budget.charge(bound.work * ITEM_WORK);
    return n;
  }

  /** Checks that a string of `n` characters may be built. */
  private allowText(n: number): void {
    this.budget.checkValue(n);
  }

  private binary(node: BinaryNode, env: Environment): Value {
    const op = node.operator.value;
    // `and`/`or` evaluate their right side only when needed; the rest cannot build much.
    if (op !== "~" && op !== "+" && op !== "in" && op !== "not in") return this.account(super.evaluate(node, env));
    const left = this.evaluate(node.left, env);
    const right = this.evaluate(node.right, env);
    if (op === "+" && isList(left) && isList(right)) {
      this.budget.checkItems(left.value.length + right.value.length);
    } else if (op === "~" || (op === "+" && (isString(left) || isString(right)))) {
      // Both sides are turned into text; a list becomes the text of all its items.
      this.allowText(this.textOf(left) + this.textOf(right));
    } else if (isList(right)) {
      // Membership compares with every item; comparing a long string is long.
      this.budget.charge(right.value.length * (1 + (isString(left) ? left.value.length : 0)));
    }
    return this.account(super.evaluate({ ...node, left: precomputed(left), right: precomputed(right) } as Node, env));
  }

  /** A string's `replace` and `split` are wrapped so that what they would build is checked before they run. */
  private member(node: MemberNode, env: Environment): Value {
    const object = this.evaluate(node.object, env);
    const v = super.evaluate({ ...node, object: precomputed(object) } as Node, env);
    if (v.type !== "FunctionValue" || !isString(object)) return this.account(v);
    const check =
      object.builtins.get("replace") === v
        ? (args: Value[]): void => {
            const keyword = args[args.length - 1]?.type === "KeywordArgumentsValue" ? (args[args.length - 1]!.value as Map<string, Value>) : undefined;
            this.checkReplace(object.value, args[0], args[1], args.length > 2 && !keyword ? args[2] : keyword?.get("count"));
          }
        : object.builtins.get("split") === v
          ? (args: Value[]): void => this.checkSplit(object.value, args[0], args[1])
          : undefined;
    if (!check) return v;
    const call = v.value as (args: Value[], scope: Environment) => Value;
    const FunctionValue = v.constructor as new (fn: (args: Value[], scope: Environment) => Value) => Value;
    return new FunctionValue((args, scope) => {
      check(args);
      return this.account(call(args, scope));
    });
  }

  /** Python's str.split makes a list item per piece: counted before the list is built when it could be too long. */
  private checkSplit(s: string, sep: Value | undefined, maxsplit: Value | undefined): void {
    const whitespace = sep === undefined || sep.type === "NullValue";
    const separator = !whitespace && isString(sep) ? sep.value : "";
    if (!whitespace && separator === "") return; // not a string, or empty: the package reports the error
    let pieces = whitespace ? Math.floor(s.length / 2) + 1 : Math.floor(s.length / separator.length) + 1;
    if (isInteger(maxsplit) && maxsplit.value >= 0) pieces = Math.min(pieces, maxsplit.value + 1);
    if (pieces <= this.budget.limits.maxItems) return;
    // The cheap bound is too high: count exactly (without building anything).
    this.budget.charge(s.length);
    pieces = 0;
    if (whitespace) {
      for (let i = 0, inWord = false; i < s.length; i++) {
        const space = /\s/.test(s[i]!);
        if (!space && !inWord) pieces++;
        inWord = !space;
      }
    } else {
      pieces = 1;
      for (let i = s.indexOf(separator); i >= 0; i = s.indexOf(separator, i + separator.length)) pieces++;
    }
    if (isInteger(maxsplit) && maxsplit.value >= 0) pieces = Math.min(pieces, maxsplit.value + 1);
    this.budget.checkItems(pieces);
  }

  /** Python's str.replace grows the string by (new - old) per replacement; "" matches between every character. */
  private checkReplace(s: string, old: Value | undefined, replacement: Value | undefined, count: Value | undefined): void {
    if (!old || !replacement || !isString(old) || !isString(replacement)) return; // the package reports the error
    if (replacement.value.length <= old.value.length) return;
    let times = old.value.length === 0 ? s.length + 1 : Math.floor(s.length / old.value.length);
    if (isInteger(count) && count.value >= 0) times = Math.min(times, count.value);
    this.allowText(s.length + times * (replacement.value.length - old.value.length));
  }

  private filter(operand: Value, filter: Node, env: Environment): Value {
    let name = "";
    let args: Arguments = { positional: [], keyword: new Map() };
    let applied = filter;
    if (filter.type === "Identifier") {
      name = (filter as Ident).value;
    } else if (filter.type === "CallExpression" && (filter as CallNode).callee.type === "Identifier") {
      const call = filter as CallNode;
      name = (call.callee as Ident).value;
      // Only the filters checked below need their arguments early; the others (selectattr among
      // them) look at their argument nodes themselves.
      if (name === "indent" || name === "join" || name === "tojson" || name === "replace") {
        const evaluated = this.arguments(call.args, env);
        args = evaluated.values;
        applied = { ...call, args: evaluated.nodes } as Node;
      }
    }
    this.checkFilter(name, operand, args);
    return this.account(super.evaluate({ type: "FilterExpression", operand: precomputed(operand), filter: applied } as Node, env));
  }

  /** Evaluates call arguments in the package's order (positional first, then keyword). */
  private arguments(argNodes: Node[], env: Environment): { values: Arguments; nodes: Node[] } {
    const values: Arguments = { positional: [], keyword: new Map() };
    const nodes = [...argNodes];
    const keyword = (n: Node): boolean => n.type === "KeywordArgumentExpression" || n.type === "KeywordSpreadExpression";
    argNodes.forEach((n, i) => {
      if (keyword(n)) return;
      if (n.type === "SpreadExpression") {
        const v = this.evaluate((n as SpreadNode).argument, env);
        if (isList(v)) values.positional.push(...v.value);
        nodes[i] = { ...n, argument: precomputed(v) } as Node;
      } else {
        const v = this.evaluate(n, env);
        values.positional.push(v);
        nodes[i] = precomputed(v);
      }
    });
    argNodes.forEach((n, i) => {
      if (n.type === "KeywordArgumentExpression") {
        const v = this.evaluate((n as KeywordArgNode).value, env);
        values.keyword.set((n as KeywordArgNode).key.value, v);
        nodes[i] = { ...n, value: precomputed(v) } as Node;
      } else if (n.type === "KeywordSpreadExpression") {
        const v = this.evaluate((n as SpreadNode).argument, env);
        if (isMapping(v)) for (const [k, x] of v.value) values.keyword.set(k, x);
        nodes[i] = { ...n, argument: precomputed(v) } as Node;
      }
    });
    return { values, nodes };
  }

  private checkFilter(name: string, operand: Value, { positional, keyword }: Arguments): void {
    const arg = (i: number, key: string): Value | undefined => positional[i] ?? keyword.get(key);
    switch (name) {
      case "indent": {
        if (!isString(operand)) return;
        const w = arg(0, "width");
        const width = w === undefined ? 4 : isInteger(w) ? Math.max(0, w.value) : 0;
        let lines = 1;
        for (let i = operand.value.indexOf("\n"); i >= 0; i = operand.value.indexOf("\n", i + 1)) lines++;
        this.budget.charge(operand.value.length);
        this.allowText(operand.value.length + lines * width);
        return;
      }
      case "join": {
        const sep = arg(0, "separator");
        const sepLength = sep && isString(sep) ? sep.value.length : 0;
        const items = isString(operand) ? operand.value.length : isList(operand) ? operand.value.length : 0;
        this.allowText(this.textOf(operand) + items * sepLength);
        return;
      }
      case "tojson": {
        const indent = keyword.get("indent");
        const separators = keyword.get("separators");
        let sepLength = 4;
        if (separators && isList(separators)) for (const s of separators.value) sepLength += isString(s) ? s.value.length : 0;
        const size = isString(operand) ? 6 * operand.value.length + 2 : this.textOf(operand, isInteger(indent) ? Math.max(0, indent.value) : 0, sepLength);
        this.allowText(size);
        return;
      }
      case "string":
        if (isList(operand) || isMapping(operand)) this.allowText(this.textOf(operand));
        return;
      case "replace":
        if (isString(operand)) this.checkReplace(operand.value, arg(0, "old"), arg(1, "new"), arg(2, "count"));
        return;
      case "sort":
      case "dictsort": {
        // Each comparison may lower-case both sides: n·log n comparisons of the longest item.
        const items = isList(operand) ? operand.value : isMapping(operand) ? [...operand.value.values()] : [];
        const bound = new TextBound();
        let longest = 0;
        for (const item of items) longest = Math.max(longest, isString(item) ? item.value.length : bound.of(item));
        this.budget.charge(bound.work * ITEM_WORK + items.length * Math.ceil(Math.log2(items.length + 1)) * (1 + longest));
        return;
      }
    }
  }
}

// The package's evaluateBlock is private (a plain method at run time); it is replaced rather than
// overridden because TypeScript does not let a subclass redeclare a private member.
Object.defineProperty(BoundedInterpreter.prototype, "evaluateBlock", {
  value(this: BoundedInterpreter, statements: Node[], env: Environment): Value {
    return this.block(statements, env);
  },
});

/** Python's range() without building more items than the budget allows. */
function boundedRange(budget: RenderBudget) {
  return (start: unknown, stop?: unknown, step: unknown = 1): number[] => {
    if (stop === undefined) {
      stop = start;
      start = 0;
    }
    if (typeof start !== "number" || typeof stop !== "number" || typeof step !== "number") throw new Error("range() arguments must be numbers");
    if (step === 0) throw new Error("range() step must not be zero");
    const count = Math.max(0, Math.ceil((stop - start) / step));
    if (Number.isNaN(count)) return [];
    budget.checkItems(count);
    budget.charge(count * ITEM_WORK);
    const out: number[] = [];
    if (step > 0) for (let i = start; i < stop; i += step) out.push(i);
    else for (let i = start; i > stop; i += step) out.push(i);
    return out;
  };
}

/** The package's strftime_now: %Y %m %d %b %B %H %M %% of the local time. */
function strftimeNow(format: string): string {
  const date = new Date();
  const pad2 = (n: number): string => String(n).padStart(2, "0");
  return String(format).replace(/%[YmdbBHM%]/g, (token) => {
    switch (token) {
      case "%Y":
        return String(date.getFullYear());
      case "%m":
        return pad2(date.getMonth() + 1);
      case "%d":
        return pad2(date.getDate());
      case "%b":
        return new Intl.DateTimeFormat(undefined, { month: "short" }).format(date);
      case "%B":
        return new Intl.DateTimeFormat(undefined, { month: "long" }).format(date);
      case "%H":
        return pad2(date.getHours());
      case "%M":
        return pad2(date.getMinutes());
      default:
        return "%";
    }
  });
}

/**
 * Renders a parsed template as the package's Template.render does, with the same globals,
 * except that range() is bounded and every step is counted against `budget`.
 */
export function renderJinja(template: Template, items: Record<string, unknown>, budget: RenderBudget): string {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    raise_exception: (message: string) => {
      throw new Error(message);
    },
    range: boundedRange(budget),
    strftime_now: strftimeNow,
    True: true,
    False: false,
    None: null,
  };
  for (const [k, v] of Object.entries(globals)) env.set(k, v);
  for (const [k, v] of Object.entries(items)) env.set(k, v);
  const program: Program = template.parsed;
  return new BoundedInterpreter(env, budget).run(program).value as string;
}
