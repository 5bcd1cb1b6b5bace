// `corral login <registry>`: asks a Corral registry for a one-time web sign-in link, proving who we
// are with this machine's key (~/.corral/id_ed25519) the way a token request does: an ed25519
// signature over `POST,<URL>,<hash of the empty body>`, with `ts` and a fresh `nonce` in the URL.
// Prints the link; opening it in a browser signs that browser in to the registry's web catalog.

import { EMPTY_BODY_HASH, encodeQuery, formatPublicKeyLine, newNonce, signedAuthorization } from "@corral/shared/signing";
import { daemonConfig } from "../../config.ts";
import { loadOrCreateIdentity } from "../../identity.ts";
import { USER_AGENT } from "../../registry-client/session.ts";
import { CLIError } from "../errors.ts";

/** The registry's base URL from `host[:port]`, `http(s)://host[:port]` or a model name's host part. */
export function registryBaseURL(registry: string, insecure: boolean): string {
  const text = registry.trim();
  if (!text) throw new CLIError("login: name the registry, e.g. corral login registry.example.com");
  const explicit = /^(https?):\/\//i.exec(text);
  const scheme = explicit ? explicit[1]!.toLowerCase() : insecure ? "http" : "https";
  const rest = explicit ? text.slice(explicit[0].length) : text;
  const host = rest.split("/")[0] ?? "";
  let url: URL;
  try {
    url = new URL(`${scheme}://${host}`);
  } catch {
    throw new CLIError(`login: ${JSON.stringify(registry)} is not a registry host (expected host[:port] or http(s)://host[:port])`);
  }
  if (!url.hostname) throw new CLIError(`login: ${JSON.stringify(registry)} has no host name`);
  return `${url.protocol}//${url.host}`;
}

interface LinkResponse {
  url?: string;
  account?: string;
  expires_at?: string;
  errors?: Array<{ message?: string }>;
}

export async function loginCommand(registry: string, opts: { insecure?: boolean }): Promise<void> {
  const base = registryBaseURL(registry, opts.insecure === true);
  const key = await loadOrCreateIdentity(daemonConfig().homeDir);
  const url = `${base}/-/login/links?${encodeQuery([
    ["nonce", newNonce()],
    ["ts", String(Math.floor(Date.now() / 1000))],
  ])}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { Authorization: signedAuthorization(key, `POST,${url},${EMPTY_BODY_HASH}`), "User-Agent": USER_AGENT },
      redirect: "error",
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    const hint = base.startsWith("https:") && !opts.insecure ? " (for a registry on plain HTTP add --insecure)" : "";
    throw new CLIError(`login: could not reach ${base}: ${why}${hint}`);
  }
  const text = await res.text();
  let body: LinkResponse = {};
  try {
    body = JSON.parse(text) as LinkResponse;
  } catch {
    // reported below
  }
  if (res.status === 404 || res.status === 405) {
    throw new CLIError(`login: ${base} does not offer web sign-in (is it a Corral registry?)`);
  }
  if (!res.ok || typeof body.url !== "string") {
    const reason = body.errors?.[0]?.message ?? (text.slice(0, 200) || `HTTP ${res.status}`);
    const keyHint = res.status === 403 || res.status === 401 ? `\nThis machine's public key is:\n\n${formatPublicKeyLine(key.publicKey)}\n` : "";
    throw new CLIError(`login to ${new URL(base).host}: ${reason}${keyHint}`);
  }
  const minutes = body.expires_at ? Math.max(1, Math.round((Date.parse(body.expires_at) - Date.now()) / 60_000)) : undefined;
  process.stderr.write(
    `Open this link in your browser to sign in to ${new URL(base).host}${body.account ? ` as ${body.account}` : ""}` +
      `${minutes ? ` (valid for ${minutes} minutes, once)` : ""}:\n\n`,
  );
  process.stdout.write(`${body.url}\n`);
}
