// The slash commands of the interactive session (docs/daemon.md, "CLI"), parsed from one input
// line. Like Ollama, a command is recognised by its prefix ("/byebye" is "/bye") and its words are
// split on runs of white space.

export type ShowField = "info" | "license" | "modelfile" | "parameters" | "system" | "template";
const SHOW_FIELDS: readonly string[] = ["info", "license", "modelfile", "parameters", "system", "template"];

export type SlashCommand =
  | { name: "list"; prefix?: string }
  | { name: "load"; model?: string }
  | { name: "save"; model?: string }
  | { name: "clear" }
  | { name: "bye" }
  | { name: "help"; topic?: "set" | "show" | "shortcuts" | "other" }
  /** `/set` alone: the `/set` help. */
  | { name: "set-usage" }
  | { name: "set-parameter"; parameter?: string; values: string[] }
  /** `text` is everything after `/set system`, words joined by one space; undefined when missing. */
  | { name: "set-system"; text?: string }
  | { name: "set-history"; on: boolean }
  | { name: "set-wordwrap"; on: boolean }
  /** `format` is undefined for `/set noformat`, "" when missing. */
  | { name: "set-format"; format: string | undefined }
  | { name: "set-verbose"; on: boolean }
  /** `level` only with `/set think <level>`. */
  | { name: "set-think"; on: boolean; level?: string }
  | { name: "set-unknown"; word: string }
  | { name: "show"; field?: ShowField }
  | { name: "show-unknown"; word: string }
  | { name: "unknown"; word: string };

/** Go's strings.Fields: words separated by runs of white space. */
function fields(line: string): string[] {
  return line.split(/\s+/u).filter((w) => w !== "");
}

export function parseSlashCommand(line: string): SlashCommand {
  const args = fields(line);
  const at = (i: number): string | undefined => args[i];
  if (line.startsWith("/list")) return { name: "list", ...(at(1) !== undefined ? { prefix: at(1)! } : {}) };
  if (line.startsWith("/load")) return args.length === 2 ? { name: "load", model: at(1)! } : { name: "load" };
  if (line.startsWith("/save")) return args.length === 2 ? { name: "save", model: at(1)! } : { name: "save" };
  if (line.startsWith("/clear")) return { name: "clear" };
  if (line.startsWith("/set")) return parseSet(args);
  if (line.startsWith("/show")) {
    const field = at(1);
    if (field === undefined) return { name: "show" };
    return SHOW_FIELDS.includes(field) ? { name: "show", field: field as ShowField } : { name: "show-unknown", word: field };
  }
  if (line.startsWith("/help") || line.startsWith("/?")) {
    const topic = at(1);
    if (topic === undefined) return { name: "help" };
    if (topic === "set" || topic === "/set") return { name: "help", topic: "set" };
    if (topic === "show" || topic === "/show") return { name: "help", topic: "show" };
    if (topic === "shortcut" || topic === "shortcuts") return { name: "help", topic: "shortcuts" };
    return { name: "help", topic: "other" };
  }
  if (line.startsWith("/exit") || line.startsWith("/bye")) return { name: "bye" };
  return { name: "unknown", word: at(0) ?? line };
}

function parseSet(args: string[]): SlashCommand {
  const sub = args[1];
  switch (sub) {
    case undefined:
      return { name: "set-usage" };
    case "history":
    case "nohistory":
      return { name: "set-history", on: sub === "history" };
    case "wordwrap":
    case "nowordwrap":
      return { name: "set-wordwrap", on: sub === "wordwrap" };
    case "verbose":
    case "quiet":
      return { name: "set-verbose", on: sub === "verbose" };
    case "think":
      return args[2] !== undefined ? { name: "set-think", on: true, level: args[2] } : { name: "set-think", on: true };
    case "nothink":
      return { name: "set-think", on: false };
    case "format":
      return { name: "set-format", format: args[2] ?? "" };
    case "noformat":
      return { name: "set-format", format: undefined };
    case "parameter":
      return args.length < 4 ? { name: "set-parameter", values: [] } : { name: "set-parameter", parameter: args[2]!, values: args.slice(3) };
    case "system":
      return args.length < 3 ? { name: "set-system" } : { name: "set-system", text: args.slice(2).join(" ") };
    default:
      return { name: "set-unknown", word: sub };
  }
}
