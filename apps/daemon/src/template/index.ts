/**
 * Go text/template for model TEMPLATEs: parse, execute, and the tree
 * operations prompt building needs. See values.ts for how JavaScript data
 * stands for Go values.
 */
export type * from "./ast.ts";
export { nodeString } from "./ast.ts";
export { TemplateError } from "./errors.ts";
export type { ExecOptions } from "./exec.ts";
export { toTypeScriptType, type TemplateFunc } from "./funcs.ts";
export { goJSON } from "./json.ts";
export { parseTemplate, Template, type ParseOptions } from "./template.ts";
export {
  parseModelTemplate,
  renderModelTemplate,
  templateVars,
  truncateAfterResponse,
  type ChatMessage,
  type ChatTool,
  type ChatToolCall,
  type TemplateValues,
} from "./model.ts";
