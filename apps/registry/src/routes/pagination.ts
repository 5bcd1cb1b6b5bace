// Pagination of lists (tags/list, _catalog) as Distribution does it: `n`, `last` and a Link header.

import type { Context } from "hono";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";

export const MAX_PAGE = 1000;

/** `n` and `last` of a paginated list (tags/list, _catalog). */
export function pageParams(c: Context<AppEnv>): { n: number; last: string } {
  const rawN = c.req.query("n");
  let n = MAX_PAGE;
  if (rawN !== undefined && rawN !== "") {
    if (!/^\d{1,9}$/.test(rawN)) throw new RegistryError("INVALID_REQUEST", `invalid n ${JSON.stringify(rawN.slice(0, 20))}: expected a non-negative integer`);
    n = Math.min(Number(rawN), MAX_PAGE);
  }
  const last = (c.req.query("last") ?? "").slice(0, 400);
  return { n, last };
}

/** RFC 5988 Link to the next page, when the page was full. */
export function nextLink(c: Context<AppEnv>, items: string[], n: number): Record<string, string> {
  if (n === 0 || items.length < n) return {};
  const url = new URL(c.req.url);
  url.searchParams.set("n", String(n));
  url.searchParams.set("last", items[items.length - 1]!);
  return { Link: `<${url.pathname}${url.search}>; rel="next"` };
}
