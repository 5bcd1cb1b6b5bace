// `corral-registry mirror warm`: through the running server that holds an embedded registry's data
// (its admin API streams the progress), else straight on the database and blob store.

import { humanBytes } from "@corral/shared/format";
import { shortDigest } from "@corral/shared/digest";
import type { Config } from "../config.ts";
import type { WarmEvent } from "../mirror/warm.ts";
import { embeddedServer, openExistingRegistry } from "./admin-client.ts";

function print(e: WarmEvent): void {
  if (e.status === "manifest") console.log(`${e.name}: manifest ${shortDigest(e.digest)} (${e.outcome})`);
  else if (e.status === "blob") {
    const what = e.state === "present" ? "already here" : e.state === "stored" ? "stored" : `fetching ${humanBytes(e.completed)} of ${humanBytes(e.total)}`;
    console.log(`  ${shortDigest(e.digest)} ${humanBytes(e.total)}: ${what}`);
  } else console.log(`${e.name} is ready: ${e.blobs} blobs, ${humanBytes(e.bytes)} (${e.fetched} fetched from upstream)`);
}

export async function warmCommand(config: Config, name: string): Promise<void> {
  const server = embeddedServer(config);
  if (!server) {
    const registry = await openExistingRegistry(config);
    try {
      const { warmMirror } = await import("../mirror/warm.ts");
      await warmMirror(registry, name, print);
    } finally {
      await registry.close();
    }
    return;
  }
  let res: Response;
  try {
    res = await fetch(`${server.url}/admin/mirror/warm`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name }),
    });
  } catch (e) {
    throw new Error(`the registry at ${server.url} did not answer: ${(e as { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { errors?: Array<{ message?: string }> }).errors?.[0]?.message ?? text;
    } catch {
      // not JSON
    }
    throw new Error(message || `HTTP ${res.status}`);
  }
  // One JSON object a line: progress events, then success or {"error"}.
  let pending = "";
  const decoder = new TextDecoder();
  let finished = false;
  const handle = (line: string): void => {
    if (!line.trim()) return;
    const e = JSON.parse(line) as WarmEvent | { error: string };
    if ("error" in e) throw new Error(e.error);
    print(e);
    if (e.status === "success") finished = true;
  };
  for await (const chunk of res.body) {
    pending += decoder.decode(chunk as Uint8Array, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    lines.forEach(handle);
  }
  handle(pending);
  if (!finished) throw new Error(`the registry at ${server.url} stopped answering before ${name} was ready; run the command again`);
}
