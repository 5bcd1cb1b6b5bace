/**
 * Go text/template for model TEMPLATEs: parse, execute, and the tree
 * operations prompt building needs. See values.ts for how JavaScript data
 * stands for Go values, and limits.ts for the bounds every render runs
 * within (the Jinja renderer in runner/jinja-render.ts shares them).
 */
export type * from "./ast.ts";
export { nodeString } from "./ast.ts";
export { TemplateError } from "./errors.ts";
export type { ExecOptions } from "./exec.ts";
export { toTypeScriptType, type TemplateFunc } from "./funcs.ts";
export { goJSON } from "./json.ts";
export { DEFAULT_LIMITS, limitsFor, RenderBudget, TemplateLimitError, type BudgetOptions, type InputSize, type RenderLimits } from "./limits.ts";
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
