// Model descriptions are Markdown written by owners and read by everyone, so they are rendered with
// raw HTML escaped (shown as text, never interpreted) and links and images limited to http(s),
// mailto and relative URLs: nothing in a description can run script in a visitor's browser.

import { Marked, type Token, type Tokens } from "marked";

export function escapeHTML(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** The URL when it is safe to put in href/src, else undefined. */
export function safeURL(raw: string | null | undefined): string | undefined {
  if (!raw) return undefined;
  // Browsers ignore control characters and spaces inside a scheme ("java\tscript:").
  const squeezed = raw.replace(/[\u0000-\u0020\u007f-\u009f]/g, "");
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(squeezed)?.[1]?.toLowerCase();
  if (scheme === undefined) return raw.startsWith("//") ? undefined : raw;
  return scheme === "http" || scheme === "https" || scheme === "mailto" ? raw : undefined;
}

const marked = new Marked({ gfm: true, async: false });
marked.use({
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag): string {
      return escapeHTML(text);
    },
    link(token: Tokens.Link): string {
      const text = this.parser.parseInline(token.tokens);
      const href = safeURL(token.href);
      if (!href) return text;
      const title = token.title ? ` title="${escapeHTML(token.title)}"` : "";
      return `<a href="${escapeHTML(href)}"${title} rel="nofollow noopener noreferrer">${text}</a>`;
    },
    image(token: Tokens.Image): string {
      const src = safeURL(token.href);
      if (!src) return escapeHTML(token.text);
      const title = token.title ? ` title="${escapeHTML(token.title)}"` : "";
      return `<img src="${escapeHTML(src)}" alt="${escapeHTML(token.text)}"${title} loading="lazy" referrerpolicy="no-referrer">`;
    },
  },
});

/**
 * A description as its model page shows it, each part once: the opening paragraph as the lead
 * under the title, the rest as the readme. A description that opens with something else (a
 * heading, a list) has no lead and is all readme.
 */
export function leadAndRest(source: string): { lead: string; rest: string } {
  const tokens = marked.lexer(source);
  const first = tokens.findIndex((t) => t.type !== "space");
  if (first < 0 || tokens[first]!.type !== "paragraph") return { lead: "", rest: marked.parser(tokens) };
  // Reference-style links are defined once for the whole text; both parts keep the definitions.
  const part = (list: Token[]): string => marked.parser(Object.assign(list, { links: tokens.links }));
  return { lead: part(tokens.slice(first, first + 1)), rest: part(tokens.slice(first + 1)) };
}

/** The first paragraph as plain text, for model lists. */
export function summary(source: string, max = 220): string {
  const first = marked.lexer(source).find((t) => t.type === "paragraph") as Tokens.Paragraph | undefined;
  if (!first) return "";
  const text = first.text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]*>/g, "")
    .replace(/(\*\*|__|[*_`~])/g, "")
    .replace(/\s+/g, " ")
    .trim();
  return text.length > max ? `${text.slice(0, max - 1).trimEnd()}…` : text;
}
