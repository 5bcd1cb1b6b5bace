// Which web pages may call the daemon. A browser lets any page send "simple" requests to any
// address without asking first (a POST with a text/plain body, a <form>), and the daemon would act
// on them: copy and delete models, write blobs, pull from and push to a registry the page names,
// run models. So a request that carries an Origin is refused with 403 unless its origin is on the
// allow-list (CORRAL_ORIGINS, else OLLAMA_ORIGINS, plus local pages and app webviews), before any
// route runs or reads its body. Requests without an Origin come from CLIs, servers and SDKs, not
// from pages, and pass unchanged. Allowed origins get the CORS headers, preflights included.
//
// Unlike Ollama's CORS middleware, a request whose Origin is http://<its own Host> gets no
// exemption. The daemon serves no pages, so such a request comes from a page that reached it under
// a name of the page's own choosing, which is DNS rebinding; on a daemon bound to 0.0.0.0, where
// the Host check does not apply, that exemption would let the page in.
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";

/** The request headers a page may send: those of Ollama's clients and of OpenAI's SDKs. */
const ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "User-Agent",
  "Accept",
  "X-Requested-With",
  "OpenAI-Beta",
  "x-stainless-arch",
  "x-stainless-async",
  "x-stainless-custom-poll-interval",
  "x-stainless-helper-method",
  "x-stainless-lang",
  "x-stainless-os",
  "x-stainless-package-version",
  "x-stainless-poll-helper",
  "x-stainless-retry-count",
  "x-stainless-runtime",
  "x-stainless-runtime-version",
  "x-stainless-timeout",
];

const ALLOWED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/** How long a browser may cache a preflight's answer. */
const PREFLIGHT_MAX_AGE_S = 12 * 60 * 60;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Matches an Origin against patterns in which `*` stands for any run of characters (so
 * `http://localhost:*` is any port, `https://*.example.com` any subdomain); a lone `*` allows every
 * origin. Comparison ignores case, as browsers send scheme and host in lower case.
 */
export function originMatcher(patterns: readonly string[]): (origin: string) => boolean {
  const normal = patterns.map((p) => p.trim().toLowerCase());
  if (normal.includes("*")) return () => true;
  const exact = new Set(normal.filter((p) => !p.includes("*")));
  const wildcards = normal.filter((p) => p.includes("*")).map((p) => new RegExp(`^${p.split("*").map(escapeRegExp).join(".*")}$`, "s"));
  return (origin) => {
    const o = origin.toLowerCase();
    return exact.has(o) || wildcards.some((w) => w.test(o));
  };
}

/** Patterns that can never match what a browser sends (an origin always has a scheme): typos to report. */
export function unusableOrigins(patterns: readonly string[]): string[] {
  return patterns.filter((p) => !p.includes("*") && !p.includes("://"));
}

export function originCheck(patterns: readonly string[]): MiddlewareHandler {
  const allowed = originMatcher(patterns);
  const grant = cors({ origin: (origin) => origin, allowMethods: ALLOWED_METHODS, allowHeaders: ALLOWED_HEADERS, maxAge: PREFLIGHT_MAX_AGE_S });
  return async (c, next) => {
    const origin = c.req.header("origin");
    if (origin === undefined) return next();
    if (!allowed(origin)) {
      return c.json({ error: `origin ${JSON.stringify(origin)} is not allowed to call this daemon; to allow it, add it to CORRAL_ORIGINS` }, 403);
    }
    return grant(c, next);
  };
}
