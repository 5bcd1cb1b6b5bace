/**
 * Executes a parsed template against JavaScript data with Go text/template
 * semantics (see values.ts for how JS values stand for Go ones). Errors carry
 * Go's wording and location: `template: :1:3: executing "" at <.X.Y>: …`.
 */
import type { AnyNode, ArgNode, BranchNode, ChainNode, CommandNode, FieldNode, IdentifierNode, ListNode, Node, PipeNode, TemplateNode, VariableNode } from "./ast.ts";
import { nodeString } from "./ast.ts";
import { FuncError, TemplateError } from "./errors.ts";
import { formatValue, goQuote } from "./format.ts";
import type { TemplateFunc } from "./funcs.ts";
import { DEFAULT_LIMITS, RenderBudget } from "./limits.ts";
import { goTypeName, hasField, isGoInt, isNil, isRecord, mapEntries, truth } from "./values.ts";

export interface ExecOptions {
  /**
   * The render's budget (limits.ts); several executions of one render share it. Without one, the
   * execution gets its own with the default limits.
   */
  budget?: RenderBudget;
  /** Upper bound on the rendered length (UTF-16 units), for an execution without a budget of its own. */
  maxOutputLength?: number;
}

export interface ExecContext {
  source: string;
  root: ListNode;
  defined: ReadonlyMap<string, ListNode>;
  funcs: ReadonlyMap<string, TemplateFunc>;
}

const enum Flow {
  Normal,
  Break,
  Continue,
}

/** Marks "no value piped in from a previous command". */
const MISSING: unique symbol = Symbol("missing");
type Final = unknown;

interface Variable {
  name: string;
  value: unknown;
}

/** Where a field, method or function is evaluated, and what the command gives it. */
interface CallSite {
  /** The node an error in the call points at. */
  node: AnyNode;
  /** The command's argument nodes with the callee itself as args[0], as in Go; null for none. */
  args: readonly ArgNode[] | null;
  /** The value piped in from the previous command, or MISSING. */
  final: Final;
}

/** What is called: its name for messages, how to call it, and for a built-in its arity rules. */
interface Callee {
  name: string;
  call: (args: unknown[]) => unknown;
  spec: TemplateFunc | null;
}

/**
 * How much a value counts as work when a function takes or returns it: a string's length, since
 * comparing, measuring, escaping or slicing a string takes time in proportion to it. Lists count
 * nothing: len and index take constant time, and `slice $.Messages $i` on every message is how
 * Ollama's own templates find the last one.
 */
const size = (v: unknown): number => (typeof v === "string" ? v.length : 0);

class Exec {
  private readonly out: string[] = [];
  private readonly budget: RenderBudget;
  private vars: Variable[] = [];
  private node: AnyNode | null = null;
  private name = "";
  private depth = 0;

  constructor(
    private readonly ctx: ExecContext,
    opts: ExecOptions,
  ) {
    this.budget = opts.budget ?? new RenderBudget(opts.maxOutputLength === undefined ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, maxOutput: opts.maxOutputLength });
  }

  run(data: unknown): string {
    this.vars = [{ name: "$", value: data }];
    this.walk(data, this.ctx.root);
    return this.out.join("");
  }

  // ---- errors ----

  private location(pos: number): string {
    const src = this.ctx.source;
    const p = Math.max(0, Math.min(pos, src.length));
    const before = src.slice(0, p);
    const nl = before.lastIndexOf("\n");
    let line = 1;
    for (let i = 0; i < p; i++) if (src.charCodeAt(i) === 10) line++;
    const col = Buffer.byteLength(before.slice(nl + 1), "utf8");
    return `:${line}:${col}`;
  }

  private errorf(message: string): never {
    const node = this.node;
    if (node === null) throw new TemplateError(`template: ${this.name}: ${message}`);
    throw new TemplateError(`template: ${this.location(node.pos)}: executing ${goQuote(this.name)} at <${nodeString(node)}>: ${message}`);
  }

  // ---- variables ----

  private varValue(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]!.name === name) return this.vars[i]!.value;
    this.errorf(`undefined variable: ${name}`);
  }

  private setVar(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i]!.name === name) {
        this.vars[i]!.value = value;
        return;
      }
    }
    this.errorf(`undefined variable: ${name}`);
  }

  // ---- walking ----

  private write(s: string): void {
    this.budget.write(s.length);
    this.out.push(s);
  }

  private walk(dot: unknown, node: Node): Flow {
    this.budget.step();
    this.node = node;
    switch (node.type) {
      case "text":
        this.write(node.text);
        return Flow.Normal;
      case "action": {
        const v = this.evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) {
          this.node = node;
          this.write(isNil(v) ? "<no value>" : formatValue(v));
        }
        return Flow.Normal;
      }
      case "list":
        for (const n of node.nodes) {
          const f = this.walk(dot, n);
          if (f !== Flow.Normal) return f;
        }
        return Flow.Normal;
      case "if":
      case "with":
        return this.walkIfOrWith(dot, node);
      case "range":
        return this.walkRange(dot, node);
      case "template":
        this.walkTemplate(dot, node);
        return Flow.Normal;
      case "break":
        return Flow.Break;
      case "continue":
        return Flow.Continue;
      case "comment":
        return Flow.Normal;
    }
  }

  private walkIfOrWith(dot: unknown, node: BranchNode): Flow {
    const mark = this.vars.length;
    try {
      const v = this.evalPipeline(dot, node.pipe);
      if (truth(v)) return this.walk(node.type === "with" ? v : dot, node.list);
      if (node.elseList) return this.walk(dot, node.elseList);
      return Flow.Normal;
    } finally {
      this.vars.length = mark;
    }
  }

  private walkRange(dot: unknown, node: BranchNode): Flow {
    const outer = this.vars.length;
    try {
      const val = this.evalPipeline(dot, node.pipe);
      const mark = this.vars.length;
      const { decl, isAssign } = node.pipe;
      const one = (key: unknown, elem: unknown): Flow => {
        if (decl.length > 0) {
          if (isAssign) this.setVar(decl[0]!.ident[0]!, decl.length > 1 ? key : elem);
          else this.vars[this.vars.length - 1]!.value = elem;
        }
        if (decl.length > 1) {
          if (isAssign) this.setVar(decl[1]!.ident[0]!, elem);
          else this.vars[this.vars.length - 2]!.value = key;
        }
        try {
          return this.walk(elem, node.list);
        } finally {
          this.vars.length = mark;
        }
      };
      let ran = false;
      const iterate = (pairs: Iterable<[unknown, unknown]>): void => {
        for (const [k, e] of pairs) {
          ran = true;
          if (one(k, e) === Flow.Break) break;
        }
      };
      if (Array.isArray(val) || ArrayBuffer.isView(val)) {
        const arr = val as ArrayLike<unknown>;
        iterate((function* () {
          for (let i = 0; i < arr.length; i++) yield [i, arr[i]] as [unknown, unknown];
        })());
      } else if (typeof val === "number" && isGoInt(val)) {
        if (decl.length > 1) this.errorf(`can't use ${formatValue(val)} to iterate over more than one variable`);
        iterate((function* () {
          for (let i = 0; i < val; i++) yield [i, i] as [unknown, unknown];
        })());
      } else if (!isNil(val)) {
        const entries = mapEntries(val);
        if (entries === null) this.errorf(`range can't iterate over ${formatValue(val)}`);
        // Sorting the keys is work each time the range starts.
        this.budget.charge(entries.length);
        iterate(entries);
      }
      if (!ran && node.elseList) return this.walk(dot, node.elseList);
      return Flow.Normal;
    } finally {
      this.vars.length = outer;
    }
  }

  private walkTemplate(dot: unknown, node: TemplateNode): void {
    const tmpl = this.ctx.defined.get(node.name);
    if (tmpl === undefined) this.errorf(`template ${goQuote(node.name)} not defined`);
    this.budget.checkDepth(this.depth + 1);
    const newDot = node.pipe ? this.evalPipeline(dot, node.pipe) : undefined;
    const saved = { vars: this.vars, name: this.name };
    this.vars = [{ name: "$", value: newDot }];
    this.name = node.name;
    this.depth++;
    try {
      this.walk(newDot, tmpl);
    } finally {
      this.depth--;
      this.vars = saved.vars;
      this.name = saved.name;
    }
  }

  // ---- evaluation ----

  private evalPipeline(dot: unknown, pipe: PipeNode): unknown {
    this.node = pipe;
    let value: unknown = MISSING;
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value);
    for (const v of pipe.decl) {
      if (pipe.isAssign) this.setVar(v.ident[0]!, value);
      else this.vars.push({ name: v.ident[0]!, value });
    }
    return value;
  }

  private notAFunction(args: readonly ArgNode[], final: Final): void {
    if (args.length > 1 || final !== MISSING) this.errorf(`can't give argument to non-function ${nodeString(args[0]!)}`);
  }

  private evalCommand(dot: unknown, cmd: CommandNode, final: Final): unknown {
    const first = cmd.args[0]!;
    switch (first.type) {
      case "field":
        return this.evalFieldNode(dot, first, cmd.args, final);
      case "chain":
        return this.evalChainNode(dot, first, cmd.args, final);
      case "identifier":
        return this.evalFunction(dot, first, { node: cmd, args: cmd.args, final });
      case "pipe":
        this.notAFunction(cmd.args, final);
        return this.evalPipeline(dot, first);
      case "variable":
        return this.evalVariableNode(dot, first, cmd.args, final);
    }
    this.node = first;
    this.notAFunction(cmd.args, final);
    switch (first.type) {
      case "bool":
        return first.value;
      case "dot":
        return dot;
      case "nil":
        this.errorf("nil is not a command");
      // falls through: errorf never returns
      case "number":
        return first.value;
      case "string":
        return first.text;
    }
  }

  private evalFieldNode(dot: unknown, field: FieldNode, args: readonly ArgNode[] | null, final: Final): unknown {
    this.node = field;
    return this.evalFieldChain(dot, dot, field.ident, { node: field, args, final });
  }

  private evalChainNode(dot: unknown, chain: ChainNode, args: readonly ArgNode[] | null, final: Final): unknown {
    this.node = chain;
    if (chain.node.type === "nil") this.errorf(`indirection through explicit nil in ${nodeString(chain)}`);
    const receiver = this.evalArg(dot, chain.node);
    return this.evalFieldChain(dot, receiver, chain.field, { node: chain, args, final });
  }

  private evalVariableNode(dot: unknown, v: VariableNode, args: readonly ArgNode[] | null, final: Final): unknown {
    this.node = v;
    const value = this.varValue(v.ident[0]!);
    if (v.ident.length === 1) {
      if (args) this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(dot, value, v.ident.slice(1), { node: v, args, final });
  }

  private evalFieldChain(dot: unknown, receiver: unknown, ident: readonly string[], site: CallSite): unknown {
    // Only the last field of the chain is given the command's arguments.
    const inner: CallSite = { node: site.node, args: null, final: MISSING };
    for (let i = 0; i < ident.length - 1; i++) receiver = this.evalField(dot, receiver, ident[i]!, inner);
    return this.evalField(dot, receiver, ident[ident.length - 1]!, site);
  }

  private evalField(dot: unknown, receiver: unknown, name: string, site: CallSite): unknown {
    const { args, final } = site;
    // A nil receiver yields nil, as Go does for values taken from maps.
    if (isNil(receiver)) return undefined;
    const hasArgs = (args !== null && args.length > 1) || final !== MISSING;
    if (receiver instanceof Map) {
      if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
      return receiver.get(name);
    }
    if (isRecord(receiver)) {
      if (!hasField(receiver, name)) {
        if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
        return undefined;
      }
      const value = receiver[name];
      if (typeof value === "function") {
        return this.evalCall(dot, { name, call: (callArgs) => (value as (...a: unknown[]) => unknown).apply(receiver, callArgs), spec: null }, site);
      }
      if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
      return value;
    }
    this.errorf(`can't evaluate field ${name} in type ${goTypeName(receiver)}`);
  }

  private evalFunction(dot: unknown, ident: IdentifierNode, site: CallSite): unknown {
    this.node = ident;
    const fn = this.ctx.funcs.get(ident.name);
    if (fn === undefined) this.errorf(`${goQuote(ident.name)} is not a defined function`);
    return this.evalCall(dot, { name: ident.name, call: (a) => fn.call(a), spec: fn }, site);
  }

  /**
   * Calls a function or method. `site.args`, when present, includes the callee as args[0], as in Go.
   * `callee.spec` gives built-in arity and short-circuit rules; methods on data have none.
   */
  private evalCall(dot: unknown, callee: Callee, site: CallSite): unknown {
    const { name, call, spec } = callee;
    const { node, args, final } = site;
    const argNodes = args ? args.slice(1) : [];
    const numIn = argNodes.length + (final !== MISSING ? 1 : 0);
    if (spec) {
      if (spec.maxArgs === Infinity) {
        if (numIn < spec.minArgs) this.errorf(`wrong number of args for ${name}: want at least ${spec.minArgs} got ${argNodes.length}`);
      } else if (numIn !== spec.minArgs) {
        this.errorf(`wrong number of args for ${name}: want ${spec.minArgs} got ${numIn}`);
      }
      if (spec.shortCircuit) {
        const stopOn = spec.shortCircuit === "or";
        let v: unknown = undefined;
        for (const a of argNodes) {
          v = this.evalArg(dot, a);
          if (truth(v) === stopOn) return v;
        }
        return final !== MISSING ? final : v;
      }
    }
    const values = argNodes.map((a, i) => {
      const v = this.evalArg(dot, a);
      if (spec?.stringParams !== undefined && i < spec.stringParams && typeof v !== "string") {
        this.node = a;
        if (a.type === "number" || a.type === "bool" || a.type === "nil") this.errorf(`expected string; found ${nodeString(a)}`);
        this.errorf(`wrong type for value; expected string; got ${goTypeName(v)}`);
      }
      return v;
    });
    if (final !== MISSING) values.push(final);
    // A call costs a step, and its string arguments and result count as work.
    this.budget.step();
    for (const v of values) this.budget.charge(size(v));
    let result: unknown;
    try {
      result = call(values);
    } catch (err) {
      if (err instanceof TemplateError) throw err;
      this.node = node;
      const msg = err instanceof FuncError || err instanceof Error ? err.message : String(err);
      this.errorf(`error calling ${name}: ${msg}`);
    }
    if (typeof result === "string") this.budget.checkValue(result.length);
    this.budget.charge(size(result));
    return result;
  }

  private evalArg(dot: unknown, n: ArgNode): unknown {
    this.node = n;
    switch (n.type) {
      case "dot":
        return dot;
      case "nil":
        return null;
      case "field":
        return this.evalFieldNode(dot, n, [n], MISSING);
      case "variable":
        return this.evalVariableNode(dot, n, null, MISSING);
      case "pipe":
        return this.evalPipeline(dot, n);
      case "identifier":
        return this.evalFunction(dot, n, { node: n, args: null, final: MISSING });
      case "chain":
        return this.evalChainNode(dot, n, null, MISSING);
      case "bool":
        return n.value;
      case "number":
        return n.value;
      case "string":
        return n.text;
    }
  }
}

export function execute(ctx: ExecContext, data: unknown, opts: ExecOptions = {}): string {
  return new Exec(ctx, opts).run(data);
}
