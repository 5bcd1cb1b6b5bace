/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
// The page frame every catalog page shares: header with search and the signed-in account, footer.

import type { Child } from "hono/jsx";
import { assetURL } from "./static.ts";

export interface Viewer {
  name: string;
  keyFingerprint: string;
  csrfToken: string;
}

/** What every page needs to know about the request. */
export interface PageContext {
  /** host[:port] of the registry, the first part of a model name. */
  host: string;
  /** The registry speaks plain HTTP, so pulls need --insecure. */
  insecure: boolean;
  viewer: Viewer | undefined;
}

export const SearchIcon = () => (
  <svg viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
    <circle cx="8.5" cy="8.5" r="5.5" />
    <path d="m13 13 4.5 4.5" stroke-linecap="round" />
  </svg>
);

export const ClockIcon = () => (
  <svg viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
    <circle cx="10" cy="10" r="7.25" />
    <path d="M10 6v4.25l2.75 1.75" stroke-linecap="round" />
  </svg>
);

export const TagIcon = () => (
  <svg viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
    <path d="M3 3h6.5l7.5 7.5-6.5 6.5L3 9.5z" stroke-linejoin="round" />
    <circle cx="7" cy="7" r="1.3" fill="currentColor" stroke="none" />
  </svg>
);

export const KeyIcon = () => (
  <svg viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
    <circle cx="6.5" cy="13.5" r="3.5" />
    <path d="m9 11 8-8m-3 3 2 2" stroke-linecap="round" />
  </svg>
);

export const DownloadIcon = () => (
  <svg viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
    <path d="M10 3v9.5m-4-4 4 4 4-4M4 16.5h12" stroke-linecap="round" stroke-linejoin="round" />
  </svg>
);

export const CopyIcon = () => (
  <svg viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
    <rect x="7" y="7" width="10" height="10" rx="2" />
    <path d="M13 4.5V4a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v8a1 1 0 0 0 1 1h.5" />
  </svg>
);

export function SearchForm(props: { value?: string; big?: boolean; id: string }) {
  return (
    <form class={props.big ? "search big" : "search"} role="search" action="/" method="get">
      <label class="sr" for={props.id}>
        Search models
      </label>
      <SearchIcon />
      <input id={props.id} name="q" type="search" placeholder="Search models" value={props.value ?? ""} autocomplete="off" maxlength={200} />
    </form>
  );
}

export function Layout(props: { ctx: PageContext; title: string; children?: Child; query?: string; hideHeaderSearch?: boolean; description?: string }) {
  const { ctx } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title}</title>
        {props.description ? <meta name="description" content={props.description} /> : null}
        <link rel="stylesheet" href={assetURL("style.css")} />
        <link rel="icon" href={assetURL("icon.svg")} type="image/svg+xml" />
        <script src={assetURL("copy.js")} defer></script>
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="site">
          <div class="wrap bar">
            <a class="brand" href="/">
              <img src={assetURL("icon.svg")} alt="" width="30" height="30" />
              Corral
            </a>
            {props.hideHeaderSearch ? null : <SearchForm id="header-q" value={props.query} />}
            <nav aria-label="Account">
              {ctx.viewer ? (
                <>
                  <span class="who" title={`Signed in with the key ${ctx.viewer.keyFingerprint}`}>
                    Signed in as <a href={`/${ctx.viewer.name}`}>{ctx.viewer.name}</a>
                  </span>
                  <form method="post" action="/-/logout">
                    <input type="hidden" name="_csrf" value={ctx.viewer.csrfToken} />
                    <button class="btn small" type="submit">
                      Sign out
                    </button>
                  </form>
                </>
              ) : (
                <a class="btn small" href="/-/login">
                  Sign in
                </a>
              )}
            </nav>
          </div>
        </header>
        <main id="main" class="wrap">
          {props.children}
        </main>
        <footer class="wrap site-foot">
          Corral registry at <code>{ctx.host}</code> · pull with <code>corral pull {ctx.host}/&lt;namespace&gt;/&lt;model&gt;</code>
        </footer>
      </body>
    </html>
  );
}
