// Headless Chromium for end-to-end tests: Debian's chromium (installed with apt-get when missing)
// driven by playwright-core, with the flags this offline machine needs (no background networking,
// which would fail on every start) and a fresh profile that `close()` removes.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { aptInstall } from "./apt.ts";

export const CHROMIUM = "/usr/bin/chromium";

/** Installs Debian's chromium when it is missing; returns why a browser test must be skipped, if it must. */
export function ensureChromium(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (!aptInstall(["chromium"]) || !existsSync(CHROMIUM)) return "chromium is not installed and apt-get could not install it";
  return undefined;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

export async function launchBrowser(opts: { viewport?: { width: number; height: number }; colorScheme?: "light" | "dark" } = {}): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), "corral-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // Playwright gives up on a launch, and below on any wait, after 30 s; a loaded machine may
      // need longer, and the test runner's overall limit bounds every wait instead.
      timeout: 0,
      ...(opts.viewport ? { viewport: opts.viewport } : {}),
      ...(opts.colorScheme ? { colorScheme: opts.colorScheme } : {}),
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    context.setDefaultTimeout(0);
    context.setDefaultNavigationTimeout(0);
    const page = context.pages()[0] ?? (await context.newPage());
    return {
      context,
      page,
      async close() {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
}
