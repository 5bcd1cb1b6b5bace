// The URLs this registry is reached under: REGISTRY_URL (the primary) and REGISTRY_EXTRA_URLS, or,
// without REGISTRY_URL, the names of the address it listens on.
//
// A client signs the URL it sends a token or login-link request to, and it sends that request to
// whichever server challenged it. A hostile registry therefore holds correctly signed requests for
// its own URL, and can relay them here with any Host it likes. So signed requests are verified only
// against these URLs, never against the Host they arrive with. Responses that name the registry
// (challenges, Location headers, login links, catalog pages) use the URL the client came under when
// it is one of these, so a client that reached the registry as localhost gets a realm on localhost;
// the token audience is always the primary URL's host, one audience per registry.

import { hostname, networkInterfaces } from "node:os";
import { isIP } from "node:net";
import type { Context } from "hono";
import { parseAddr, type Config } from "../config.ts";
import { RegistryError } from "../errors.ts";
import type { AppEnv } from "./env.ts";

export interface PublicURLs {
  /** The token audience's URL, and the URL for clients that came under a name not listed here. */
  primary: string;
  /** Every URL signed requests are accepted for, the primary first, without trailing slashes. */
  accepted: string[];
}

/** Where the server listens, once it does (the port is known only then when REGISTRY_ADDR says 0). */
export interface ListenAddress {
  address: string;
  port: number;
}

export function publicURLs(config: Pick<Config, "addr" | "publicURL" | "extraURLs">, listening?: ListenAddress): PublicURLs {
  const accepted = config.publicURL ? [config.publicURL] : listenURLs(config.addr, listening);
  for (const u of config.extraURLs) if (!accepted.includes(u)) accepted.push(u);
  return { primary: accepted[0]!, accepted };
}

const WILDCARDS = new Set(["0.0.0.0", "::", "::0", "0:0:0:0:0:0:0:0"]);

/** Whether `address` listens on every interface (0.0.0.0 or ::). */
export function isWildcardAddress(address: string): boolean {
  return WILDCARDS.has(address);
}

function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || /^(::ffff:)?127\./.test(h);
}

/**
 * Without REGISTRY_URL: the listen address (a name given in REGISTRY_ADDR stays that name), plus
 * every name that reaches it on this machine: the loopback names for a loopback or wildcard bind,
 * and for a wildcard bind also the interface addresses and the host name.
 */
function listenURLs(addr: string, listening: ListenAddress | undefined): string[] {
  const configured = parseAddr(addr);
  const port = listening?.port ?? configured.port;
  const bound = listening?.address ?? configured.host;
  const wildcard = isWildcardAddress(configured.host) || isWildcardAddress(bound);
  const hosts = [isIP(configured.host) === 0 ? configured.host : bound];
  if (bound !== hosts[0]) hosts.push(bound);
  if (wildcard || isLoopback(configured.host) || isLoopback(bound)) hosts.push("localhost", "127.0.0.1", "::1");
  if (wildcard) {
    for (const list of Object.values(networkInterfaces())) {
      // Link-local IPv6 addresses need a zone, which a Host header cannot carry.
      for (const i of list ?? []) if (!(i.family === "IPv6" && /^fe[89ab]/i.test(i.address))) hosts.push(i.address);
    }
    hosts.push(hostname());
  }
  const urls: string[] = [];
  for (const h of hosts) {
    let url: string;
    try {
      url = new URL(`http://${isIP(h) === 6 ? `[${h}]` : h}:${port}`).origin;
    } catch {
      continue; // a host name that is no valid URL host cannot be asked for either
    }
    if (!urls.includes(url)) urls.push(url);
  }
  return urls;
}

/** The Host the request came for (in-process requests carry it only in their URL). */
function requestHost(c: Context<AppEnv>): string | undefined {
  return c.req.header("host") ?? (new URL(c.req.url).host || undefined);
}

/** The accepted URL whose host `host` names, default ports included; undefined for any other. */
export function acceptedURLFor(urls: PublicURLs, host: string | undefined): string | undefined {
  if (!host || !/^[^\s/?#@\\]+$/.test(host)) return undefined;
  for (const u of urls.accepted) {
    const url = new URL(u);
    try {
      if (new URL(`${url.protocol}//${host}`).host === url.host) return u;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The registry's URL as this client should see it: the accepted one its Host names, else the primary. */
export function publicURL(c: Context<AppEnv>): string {
  const urls = c.var.registry.urls;
  return acceptedURLFor(urls, requestHost(c)) ?? urls.primary;
}

/** The token audience and challenge `service`: the primary URL's host, whatever name the client used. */
export function serviceHost(urls: PublicURLs): string {
  return new URL(urls.primary).host;
}

/**
 * The URLs a signed request may have been signed for: each accepted URL followed by the path and
 * query exactly as received. A request that came for another Host is refused before its signature
 * or nonce is looked at, so a relayed request never uses up the nonce of the genuine one.
 */
export function signedRequestURLs(c: Context<AppEnv>, pathAndQuery: string): string[] {
  const urls = c.var.registry.urls;
  const host = requestHost(c);
  if (!acceptedURLFor(urls, host)) {
    const list = `URL${urls.accepted.length > 1 ? "s" : ""} ${urls.accepted.join(", ")}`;
    const came = host ? `this one came for host ${host.slice(0, 255)}` : "this one named no host";
    throw new RegistryError(
      "UNAUTHORIZED",
      `signed requests are accepted only for this registry's ${list} (${came}); if clients reach the registry under that name, add it to REGISTRY_EXTRA_URLS`,
    );
  }
  return urls.accepted.map((u) => `${u}${pathAndQuery}`);
}

/** For the start-up line: the primary URL and the others. */
export function describeURLs(urls: PublicURLs): string {
  const others = urls.accepted.filter((u) => u !== urls.primary);
  return `URL ${urls.primary}${others.length ? `, also ${others.join(", ")}` : ""}`;
}
