// The catalog's stylesheet, script and icon, read once at start and served by the registry itself
// (the catalog must work on a network without internet). URLs carry a content hash, so browsers may
// cache them for good.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

export interface Asset {
  body: Buffer;
  type: string;
  /** `/-/static/<name>?v=<hash>` */
  url: string;
  hash: string;
}

const TYPES: Record<string, string> = {
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  svg: "image/svg+xml",
};

function load(name: string): Asset {
  const body = readFileSync(new URL(`./static/${name}`, import.meta.url));
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  return { body, type: TYPES[name.split(".").pop() ?? ""] ?? "application/octet-stream", url: `/-/static/${name}?v=${hash}`, hash };
}

export const assets: ReadonlyMap<string, Asset> = new Map(["style.css", "copy.js", "icon.svg"].map((n) => [n, load(n)]));

export function assetURL(name: "style.css" | "copy.js" | "icon.svg"): string {
  return assets.get(name)!.url;
}
