// The web catalog: server-rendered pages at `/`, `/<ns>`, `/<ns>/<model>` and
// `/<ns>/<model>/tags/<tag>`; everything else lives under `/-/` (no namespace can be named "-"):
// static assets, sign-in (the signed link request `corral login` makes, the link, sign-out) and
// the forms owners submit. Pages work without JavaScript; forms carry a per-session CSRF token and
// must come from this origin.

import { Hono, type Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { humanBytes } from "@corral/shared/format";
import { parseLayerJSON } from "@corral/shared/manifest";
import { renderModelfile } from "@corral/shared/modelfile/render";
import { AdminError, RegistryError, errorResponse } from "../errors.ts";
import type { AppEnv } from "../http/env.ts";
import { readLimited } from "../http/io.ts";
import { publicURL, signedRequestURLs } from "../http/public-urls.ts";
import { limitByAddress, limitByKey } from "../middleware/rate-limit.ts";
import { verifySignedRequest } from "../auth/token-request.ts";
import { accountForKey, type Account } from "../services/accounts.ts";
import {
  defaultTag,
  listModels,
  modelView,
  namespaceView,
  removeMember,
  setMemberRole,
  tagContents,
  updateModelSettings,
  type LayerText,
  type ModelSummary,
  type TagContents,
  type TagView,
} from "../services/catalog.ts";
import { namespaceProblem, repoNameProblem, tagProblem } from "../services/names.ts";
import { createLoginLink, endSession, findSession, peekLoginLink, redeemLoginLink, sameToken, SESSION_TTL_SECONDS } from "../services/sessions.ts";
import type { PageContext, Viewer } from "../web/layout.tsx";
import { HomePage, SearchPage } from "../web/pages/home.tsx";
import { ModelPage } from "../web/pages/model.tsx";
import { NamespacePage } from "../web/pages/namespace.tsx";
import { ConfirmSignInPage, MessagePage, SignInHelpPage } from "../web/pages/signin.tsx";
import { TagPage } from "../web/pages/tag.tsx";
import { assets } from "../web/static.ts";
import { mirrorOrigins } from "../mirror/manifests.ts";
import type { Registry } from "../registry.ts";

const SESSION_COOKIE = "corral_session";
const MAX_FORM_BYTES = 256 * 1024;

type WebEnv = {
  Bindings: AppEnv["Bindings"];
  Variables: AppEnv["Variables"] & { viewer: (Viewer & { account: Account }) | undefined };
};
type WebContext = Context<WebEnv>;

const CSP = [
  "default-src 'self'",
  "img-src 'self' data: http: https:",
  "style-src 'self'",
  "script-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

function pageContext(c: WebContext): PageContext {
  const base = publicURL(c as unknown as Context<AppEnv>);
  const v = c.var.viewer;
  return {
    host: new URL(base).host,
    insecure: base.startsWith("http:"),
    viewer: v ? { name: v.name, keyFingerprint: v.keyFingerprint, csrfToken: v.csrfToken } : undefined,
  };
}

async function html(c: WebContext, page: string | Promise<string>, status: 200 | 400 | 403 | 404 | 409 = 200): Promise<Response> {
  c.header("Content-Security-Policy", CSP);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  // Sign-in links carry their secret in the path: it must never reach another site as a Referer.
  c.header("Referrer-Policy", "same-origin");
  // Pages differ per signed-in account; never let a shared cache keep one.
  c.header("Cache-Control", "private, no-cache");
  c.header("Vary", "Cookie");
  // Without the doctype browsers render in quirks mode.
  return c.html(`<!DOCTYPE html>${await page}`, status);
}

function message(c: WebContext, status: 400 | 403 | 404 | 409, title: string, text: string) {
  return html(c, MessagePage({ ctx: pageContext(c), title, message: text }), status);
}

function notFound(c: WebContext, what: string) {
  const hint = c.var.viewer ? "" : " If it is private, sign in first.";
  return message(c, 404, "Not found", `There is no ${what} here that you can see.${hint}`);
}

/**
 * Form posts must come from a page of this registry. Browsers say where a request comes from in
 * Sec-Fetch-Site (which pages cannot forge) and in Origin; clients that send neither are not
 * browsers, and the CSRF token (or the link's own secret) still has to match.
 */
function sameOrigin(c: WebContext): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site) return site === "same-origin";
  const origin = c.req.header("origin");
  if (!origin) return true;
  // The page was served under the registry URL this request names (or the primary URL).
  return origin === new URL(publicURL(c as unknown as Context<AppEnv>)).origin;
}

async function readForm(c: WebContext): Promise<URLSearchParams> {
  const type = c.req.header("content-type") ?? "";
  if (!type.startsWith("application/x-www-form-urlencoded")) throw new AdminError("INVALID_REQUEST", "expected a form (application/x-www-form-urlencoded)");
  return new URLSearchParams((await readLimited(c as unknown as Context<AppEnv>, MAX_FORM_BYTES, "the form")).toString("utf8"));
}

/** The signed-in account of a state-changing form, after the origin and CSRF checks. */
async function formOf(c: WebContext): Promise<{ form: URLSearchParams; viewer: Account } | Response> {
  if (!sameOrigin(c)) return message(c, 403, "Refused", "This form was sent from another site.");
  const viewer = c.var.viewer;
  if (!viewer) return message(c, 403, "Signed out", "Your session has ended. Sign in again with corral login.");
  const form = await readForm(c);
  if (!sameToken(form.get("_csrf") ?? "", viewer.csrfToken)) return message(c, 403, "Refused", "This form has expired. Reload the page and try again.");
  return { form, viewer: viewer.account };
}

function isSecure(c: WebContext): boolean {
  return publicURL(c as unknown as Context<AppEnv>).startsWith("https:");
}

export const web = new Hono<WebEnv>({ strict: false });

web.onError((err, c) => {
  // What an owner can correct is a page; everything else answers as the API does.
  if (err instanceof AdminError) return message(c, err.status, "Not done", err.message);
  if (err instanceof RegistryError) return errorResponse(err, c.req.method === "HEAD");
  throw err;
});

web.use("*", async (c, next) => {
  const id = getCookie(c, SESSION_COOKIE);
  const session = id ? await findSession(c.var.registry.db, id) : undefined;
  c.set("viewer", session ? { name: session.account.name, keyFingerprint: session.keyFingerprint, csrfToken: session.csrfToken, account: session.account } : undefined);
  await next();
});

web.get("/-/static/:name", (c) => {
  const asset = assets.get(c.req.param("name"));
  if (!asset) return c.body(null, 404);
  const immutable = c.req.query("v") === asset.hash;
  return c.body(new Uint8Array(asset.body), 200, {
    "Content-Type": asset.type,
    "Content-Length": String(asset.body.length),
    "Cache-Control": immutable ? "public, max-age=31536000, immutable" : "public, max-age=300",
    "X-Content-Type-Options": "nosniff",
  });
});

web.get("/", async (c) => {
  const reg = c.var.registry;
  const viewer = c.var.viewer?.account;
  const q = (c.req.query("q") ?? "").trim().slice(0, 200);
  if (q) return html(c, SearchPage({ ctx: pageContext(c), query: q, models: await withMirrors(reg, await listModels(reg.db, viewer, { query: q, limit: 50, pulls: reg.pulls })) }));
  return html(c, HomePage({ ctx: pageContext(c), models: await withMirrors(reg, await listModels(reg.db, viewer, { taggedOnly: true, limit: 20, pulls: reg.pulls })) }));
});

// ---- signing in ---------------------------------------------------------------------------------

web.get("/-/login", (c) => html(c, SignInHelpPage({ ctx: pageContext(c) })));

/**
 * `corral login`: a POST signed like a token request (ed25519 over `POST,<URL>,<empty body hash>`,
 * `ts` and a single-use `nonce` in the query) by a registered key; answers a one-time link.
 */
web.post("/-/login/links", limitByAddress, async (c) => {
  const reg = c.var.registry;
  const url = new URL(c.req.url);
  const raw = c.env?.incoming?.url ?? `${url.pathname}${url.search}`;
  const query = new URLSearchParams(raw.includes("?") ? raw.slice(raw.indexOf("?") + 1) : "");
  const authorization = c.req.header("authorization");
  if (!authorization) throw new RegistryError("UNAUTHORIZED", "a login link must be requested with a signed request (corral login)");
  const candidates = signedRequestURLs(c as unknown as Context<AppEnv>, raw);
  const signed = await verifySignedRequest(reg.db, authorization, { candidateURLs: candidates, query, windowSeconds: reg.config.signatureWindowSeconds, method: "POST" });
  const base = publicURL(c as unknown as Context<AppEnv>);
  limitByKey(c as unknown as Context<AppEnv>, signed.fingerprint);
  const account = await accountForKey(reg.db, signed.publicKey);
  if (!account) {
    throw new RegistryError("DENIED", `the key ${signed.fingerprint} is not registered on ${new URL(base).host}; ask an administrator to add it to your account (corral-registry key add <user> "<key>"; corral key prints it)`);
  }
  const link = await createLoginLink(reg.db, account, signed.fingerprint);
  return c.json({ url: `${base}/-/login/${link.token}`, account: account.name, key: signed.fingerprint, expires_at: link.expiresAt.toISOString() }, 201);
});

web.get("/-/login/:token", async (c) => {
  const token = c.req.param("token");
  const link = await peekLoginLink(c.var.registry.db, token);
  if (!link) {
    return html(c, SignInHelpPage({ ctx: pageContext(c), error: "This sign-in link has expired or was already used. Run corral login again for a new one." }), 404);
  }
  // Opening the link only asks for confirmation, so link previews and scanners cannot use it up.
  return html(c, ConfirmSignInPage({ ctx: pageContext(c), token, account: link.account.name, keyFingerprint: link.keyFingerprint }), 200);
});

web.post("/-/login/:token", async (c) => {
  if (!sameOrigin(c)) return message(c, 403, "Refused", "This form was sent from another site.");
  const reg = c.var.registry;
  const redeemed = await redeemLoginLink(reg.db, c.req.param("token"));
  if (!redeemed) {
    return html(c, SignInHelpPage({ ctx: pageContext(c), error: "This sign-in link has expired or was already used. Run corral login again for a new one." }), 404);
  }
  const old = getCookie(c, SESSION_COOKIE);
  if (old) await endSession(reg.db, old);
  setCookie(c, SESSION_COOKIE, redeemed.session.id, { path: "/", httpOnly: true, sameSite: "Lax", secure: isSecure(c), maxAge: SESSION_TTL_SECONDS });
  return c.redirect(`/${redeemed.account.name}`, 303);
});

web.post("/-/logout", async (c) => {
  const r = await formOf(c);
  if (r instanceof Response) return r;
  const id = getCookie(c, SESSION_COOKIE);
  if (id) await endSession(c.var.registry.db, id);
  deleteCookie(c, SESSION_COOKIE, { path: "/", httpOnly: true, sameSite: "Lax", secure: isSecure(c) });
  return c.redirect("/", 303);
});

// ---- owners' forms ------------------------------------------------------------------------------

web.post("/-/models/:ns/:model", async (c) => {
  const r = await formOf(c);
  if (r instanceof Response) return r;
  const { ns, model } = c.req.param();
  const description = r.form.get("description");
  const visibility = r.form.get("visibility");
  await updateModelSettings(c.var.registry, { viewer: r.viewer, ns, model }, {
    ...(description !== null ? { description } : {}),
    ...(visibility !== null ? { visibility } : {}),
  });
  return c.redirect(`/${ns.toLowerCase()}/${model.toLowerCase()}?saved=1`, 303);
});

web.post("/-/orgs/:org/members", async (c) => {
  const r = await formOf(c);
  if (r instanceof Response) return r;
  const org = c.req.param("org");
  const user = (r.form.get("user") ?? "").trim();
  if (!user) throw new AdminError("INVALID_REQUEST", "user: enter the name of an account");
  if (r.form.get("action") === "remove") await removeMember(c.var.registry.db, r.viewer, org, user);
  else await setMemberRole(c.var.registry.db, r.viewer, { org, user, role: r.form.get("role") ?? "" });
  return c.redirect(`/${org.toLowerCase()}?members=1`, 303);
});

// ---- pages --------------------------------------------------------------------------------------

web.get("/:ns", async (c) => {
  const ns = c.req.param("ns");
  if (namespaceProblem(ns)) return notFound(c, "such page");
  const view = await namespaceView(c.var.registry.db, c.var.viewer?.account, ns, c.var.registry.pulls);
  if (!view) return notFound(c, `namespace called ${ns}`);
  await withMirrors(c.var.registry, view.models);
  const notice = c.req.query("members") ? "Members updated." : undefined;
  return html(c, NamespacePage({ ctx: pageContext(c), view, notice }));
});

/** Marks the models of mirrored namespaces with their origin (docs/protocol.md, "Mirrors"). */
async function withMirrors(reg: Registry, models: ModelSummary[]): Promise<ModelSummary[]> {
  const origins = await mirrorOrigins(reg, models.map((m) => `${m.namespace}/${m.name}`));
  for (const m of models) m.mirror = origins.get(`${m.namespace}/${m.name}`);
  return models;
}

async function contentsOf(c: WebContext, tag: TagView | undefined): Promise<TagContents | undefined> {
  return tag?.manifest ? tagContents(c.var.registry.db, c.var.registry.store, tag.manifest) : undefined;
}

web.get("/:ns/:model", async (c) => {
  const { ns, model } = c.req.param();
  if (repoNameProblem(ns, model)) return notFound(c, "such page");
  const reg = c.var.registry;
  const view = await modelView(reg.db, reg.store, { viewer: c.var.viewer?.account, ns, model }, reg.pulls);
  if (!view) return notFound(c, `model called ${ns}/${model}`);
  view.mirror = (await mirrorOrigins(reg, [`${view.namespace.name}/${view.repository.name}`])).values().next().value;
  const tag = defaultTag(view);
  const notice = c.req.query("saved") ? "Changes saved." : undefined;
  return html(c, ModelPage({ ctx: pageContext(c), view, tag, contents: await contentsOf(c, tag), notice }));
});

/** Layers left out of the Modelfile view that are named one by one. */
const MAX_NAMED_OMISSIONS = 8;

function modelfileOf(ctx: PageContext, of: { ns: string; model: string; tag: TagView; contents: TagContents }): string {
  const { ns, model, tag, contents } = of;
  // A layer the page shows only the start of (or none of) is named in a comment, never cut short
  // inside a command: a copied Modelfile must not silently lose text.
  const notShown: LayerText[] = [];
  const notShownKeywords: string[] = [];
  const whole = (keyword: string, l: LayerText | null): string | undefined => {
    if (!l) return undefined;
    if (l.withheld || l.truncated) {
      notShown.push(l);
      notShownKeywords.push(keyword);
      return undefined;
    }
    return l.text ?? undefined;
  };
  const template = whole("TEMPLATE", contents.template);
  const system = whole("SYSTEM", contents.system);
  const parameters = parseJSON<Record<string, unknown>>(whole("PARAMETER", contents.params));
  const messages = parseJSON<Array<{ role: string; content: string }>>(whole("MESSAGE", contents.messages));
  const licenses = contents.licenses.flatMap((l) => whole("LICENSE", l) ?? []);
  // Each layer left out is named, up to a few; a manifest with thousands gets one line for the rest.
  const named = notShown.slice(0, MAX_NAMED_OMISSIONS).map((l, i) => `${notShownKeywords[i]} ${l.digest} (${humanBytes(l.size)}) is too long to show here; corral show --modelfile prints it after a pull`);
  const rest = notShown.slice(MAX_NAMED_OMISSIONS);
  if (rest.length) named.push(`${rest.length} more layers (${humanBytes(rest.reduce((n, l) => n + l.size, 0))}) are left out too; the blobs above list them`);
  return renderModelfile({
    header: [
      `Modelfile of ${ctx.host}/${ns}/${model}:${tag.name}`,
      `Pull it first: ${`corral pull ${ctx.host}/${ns}/${model}:${tag.name}`}${ctx.insecure ? " --insecure" : ""}`,
      ...named,
    ],
    from: [`${ctx.host}/${ns}/${model}:${tag.name}`],
    adapters: contents.adapters.map((a) => a.digest),
    ...(template !== undefined ? { template } : {}),
    ...(system !== undefined ? { system } : {}),
    ...(parameters && typeof parameters === "object" && !Array.isArray(parameters) ? { parameters } : {}),
    licenses,
    ...(Array.isArray(messages) ? { messages: messages.filter((m) => typeof m?.role === "string" && typeof m?.content === "string") } : {}),
  });
}

/** A layer's JSON, if it is JSON nested no deeper than real ones are; else the page leaves it out. */
function parseJSON<T>(text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    return parseLayerJSON(text, "layer") as T;
  } catch {
    return undefined;
  }
}

web.get("/:ns/:model/tags/:tag", async (c) => {
  const { ns, model, tag: tagName } = c.req.param();
  if (repoNameProblem(ns, model) || tagProblem(tagName)) return notFound(c, "such page");
  const reg = c.var.registry;
  const view = await modelView(reg.db, reg.store, { viewer: c.var.viewer?.account, ns, model }, reg.pulls);
  const tag = view?.tags.find((t) => t.name === tagName);
  if (!view || !tag) return notFound(c, `tag ${ns}/${model}:${tagName}`);
  view.mirror = (await mirrorOrigins(reg, [`${view.namespace.name}/${view.repository.name}`])).values().next().value;
  const contents = await contentsOf(c, tag);
  const ctx = pageContext(c);
  const modelfile = contents ? modelfileOf(ctx, { ns: view.namespace.name, model: view.repository.name, tag, contents }) : undefined;
  return html(c, TagPage({ ctx, view, tag, contents, modelfile }));
});

