/** A parsed template: the unit callers hold on to and execute. */
import type { ListNode } from "./ast.ts";
import { execute, type ExecOptions } from "./exec.ts";
import { BUILTIN_FUNCS, type TemplateFunc } from "./funcs.ts";
import { parseSource } from "./parser.ts";

export interface ParseOptions {
  /** Extra functions, callable by name; they take precedence over built-ins of the same name. */
  funcs?: Record<string, TemplateFunc>;
}

export class Template {
  constructor(
    /** The text the template was parsed from, unchanged. */
    readonly source: string,
    /** The top-level tree. */
    readonly root: ListNode,
    /** Trees from `{{define}}` and `{{block}}`, by name. */
    readonly defined: ReadonlyMap<string, ListNode>,
    private readonly funcs: ReadonlyMap<string, TemplateFunc>,
  ) {}

  /** Renders the template; throws TemplateError on an execution error. */
  execute(data: unknown, opts?: ExecOptions): string {
    const defined = new Map(this.defined);
    if (!defined.has("")) defined.set("", this.root);
    return execute({ source: this.source, root: this.root, defined, funcs: this.funcs }, data, opts);
  }

  /** The same template with another top-level tree (the source text is kept). */
  withRoot(root: ListNode): Template {
    return new Template(this.source, root, this.defined, this.funcs);
  }
}

/** Parses Go text/template source; throws TemplateError (`template: :LINE: …`) on a syntax error. */
export function parseTemplate(text: string, opts: ParseOptions = {}): Template {
  const funcs = new Map(BUILTIN_FUNCS);
  for (const [name, fn] of Object.entries(opts.funcs ?? {})) funcs.set(name, fn);
  const { root, defined } = parseSource(text, new Set(funcs.keys()));
  return new Template(text, root, defined, funcs);
}
