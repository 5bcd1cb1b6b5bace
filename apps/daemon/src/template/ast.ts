/**
 * Parse tree of a template, shaped like Go's text/template/parse nodes so that
 * tree walks described in terms of Go (collect identifiers, cut after
 * `.Response`, find the `.ToolCalls` block) translate directly.
 * `pos` is the UTF-16 offset in the source of the node's first token.
 */

export interface ListNode {
  type: "list";
  pos: number;
  nodes: Node[];
}
export interface TextNode {
  type: "text";
  pos: number;
  text: string;
}
export interface CommentNode {
  type: "comment";
  pos: number;
}
export interface ActionNode {
  type: "action";
  pos: number;
  line: number;
  pipe: PipeNode;
}
export interface BranchNode {
  type: "if" | "range" | "with";
  pos: number;
  line: number;
  pipe: PipeNode;
  list: ListNode;
  elseList: ListNode | null;
}
export interface TemplateNode {
  type: "template";
  pos: number;
  line: number;
  name: string;
  /** Absent for `{{template "x"}}`: the callee then runs with a nil dot. */
  pipe: PipeNode | null;
}
export interface BreakNode {
  type: "break";
  pos: number;
}
export interface ContinueNode {
  type: "continue";
  pos: number;
}

/** A node that can stand in a list. */
export type Node = ListNode | TextNode | CommentNode | ActionNode | BranchNode | TemplateNode | BreakNode | ContinueNode;

export interface PipeNode {
  type: "pipe";
  pos: number;
  line: number;
  isAssign: boolean;
  decl: VariableNode[];
  cmds: CommandNode[];
}
export interface CommandNode {
  type: "command";
  pos: number;
  args: ArgNode[];
}
/** `.A.B` — `ident` is ["A", "B"]. */
export interface FieldNode {
  type: "field";
  pos: number;
  ident: string[];
}
/** `$x.A` — `ident` is ["$x", "A"]. */
export interface VariableNode {
  type: "variable";
  pos: number;
  ident: string[];
}
/** `(pipeline).A.B` */
export interface ChainNode {
  type: "chain";
  pos: number;
  node: ArgNode;
  field: string[];
}
export interface IdentifierNode {
  type: "identifier";
  pos: number;
  name: string;
}
export interface DotNode {
  type: "dot";
  pos: number;
}
export interface NilNode {
  type: "nil";
  pos: number;
}
export interface BoolNode {
  type: "bool";
  pos: number;
  value: boolean;
}
export interface NumberNode {
  type: "number";
  pos: number;
  text: string;
  value: number;
  isInt: boolean;
}
export interface StringNode {
  type: "string";
  pos: number;
  /** Source form, quotes included. */
  quoted: string;
  text: string;
}

/** An operand of a command. */
export type ArgNode =
  | FieldNode
  | VariableNode
  | ChainNode
  | IdentifierNode
  | DotNode
  | NilNode
  | BoolNode
  | NumberNode
  | StringNode
  | PipeNode;

export type AnyNode = Node | ArgNode | CommandNode;

/** Go's `Node.String()`: the node written back as template source, used in error messages. */
export function nodeString(n: AnyNode): string {
  switch (n.type) {
    case "list":
      return n.nodes.map(nodeString).join("");
    case "text":
      return n.text;
    case "comment":
      return "{{/* */}}";
    case "action":
      return `{{${nodeString(n.pipe)}}}`;
    case "if":
    case "range":
    case "with": {
      const els = n.elseList ? `{{else}}${nodeString(n.elseList)}` : "";
      return `{{${n.type} ${nodeString(n.pipe)}}}${nodeString(n.list)}${els}{{end}}`;
    }
    case "template":
      return n.pipe ? `{{template ${JSON.stringify(n.name)} ${nodeString(n.pipe)}}}` : `{{template ${JSON.stringify(n.name)}}}`;
    case "break":
      return "{{break}}";
    case "continue":
      return "{{continue}}";
    case "pipe": {
      const decl = n.decl.length ? `${n.decl.map(nodeString).join(", ")} ${n.isAssign ? "=" : ":="} ` : "";
      return decl + n.cmds.map(nodeString).join(" | ");
    }
    case "command":
      return n.args.map((a) => (a.type === "pipe" ? `(${nodeString(a)})` : nodeString(a))).join(" ");
    case "field":
      return "." + n.ident.join(".");
    case "variable":
      return n.ident.join(".");
    case "chain":
      return (n.node.type === "pipe" ? `(${nodeString(n.node)})` : nodeString(n.node)) + "." + n.field.join(".");
    case "identifier":
      return n.name;
    case "dot":
      return ".";
    case "nil":
      return "nil";
    case "bool":
      return String(n.value);
    case "number":
      return n.text;
    case "string":
      return n.quoted;
  }
}

/** A deep copy, so a tree can be edited (e.g. cut after `.Response`) without touching the original. */
export function copyNode<T extends AnyNode>(n: T): T {
  return structuredClone(n);
}
