// DNS-rebinding protection (docs/daemon.md, "API conventions"): a daemon bound to loopback answers only requests whose Host
// is a local name or address, so a web page cannot reach it through a name it controls.
import type { MiddlewareHandler } from "hono";
import { hostname, networkInterfaces } from "node:os";
import { isIP } from "node:net";

function privateOrLocalIP(ip: string): boolean {
  if (ip === "::1" || ip === "::" || ip.startsWith("127.") || ip === "0.0.0.0") return true;
  if (ip.startsWith("10.") || ip.startsWith("192.168.") || /^172\.(1[6-9]|2\d|3[01])\./.test(ip)) return true;
  if (/^f[cd][0-9a-f]{2}:/i.test(ip) || /^fe80:/i.test(ip)) return true;
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) if (a.address === ip) return true;
  return false;
}

export function allowedHost(hostHeader: string | undefined): boolean {
  if (!hostHeader) return true;
  let host = hostHeader.trim().toLowerCase();
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracket) host = bracket[1]!;
  else if (host.split(":").length === 2) host = host.split(":")[0]!;
  if (isIP(host)) return privateOrLocalIP(host);
  if (host === "" || host === "localhost" || host === hostname().toLowerCase()) return true;
  return host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal");
}

export function hostCheck(): MiddlewareHandler {
  return async (c, next) => {
    if (!allowedHost(c.req.header("host"))) return c.body(null, 403);
    await next();
  };
}
