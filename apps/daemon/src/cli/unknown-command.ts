// What `corral` says about a command it does not have, in the words of Ollama's CLI (cobra):
// `unknown command "x" for "corral"`, then, for near misses, the commands within two edits of it or
// starting with it, in the order they are listed.

/** Levenshtein distance, ignoring case, as cobra measures it. */
function distance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      row[j] = s[i - 1] === t[j - 1] ? prev[j - 1]! : 1 + Math.min(prev[j]!, row[j - 1]!, prev[j - 1]!);
    }
    prev = row;
  }
  return prev[t.length]!;
}

/** The commands cobra would suggest for `typed`. */
export function suggestionsFor(typed: string, commands: readonly string[]): string[] {
  return commands.filter((c) => distance(typed, c) <= 2 || c.toLowerCase().startsWith(typed.toLowerCase()));
}

/** The error message, suggestions included, for `corral <typed>`. */
export function unknownCommandMessage(typed: string, commands: readonly string[]): string {
  const suggestions = suggestionsFor(typed, commands);
  const hint = suggestions.length ? `\n\nDid you mean this?\n${suggestions.map((s) => `\t${s}\n`).join("")}` : "";
  return `unknown command ${JSON.stringify(typed)} for "corral"${hint}`;
}
