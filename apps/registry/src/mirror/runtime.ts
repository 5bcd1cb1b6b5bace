// What the mirror keeps in this process's memory (docs/protocol.md, "Mirrors"): one upstream
// client per mirrored namespace (with its cached tokens), the blob downloads and manifest lookups in
// flight, and where spool files go. Single flight holds per process: replicas each fetch once.

import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config, MirrorConfig } from "../config.ts";
import type { BlobFetch } from "./blob-fetch.ts";
import { ExpiringMap } from "@corral/shared/expiring-map";
import { SingleFlight } from "@corral/shared/single-flight";
import { UpstreamClient } from "./upstream-client.ts";
import { TokenBuckets } from "../auth/rate-limit.ts";

/** Most names remembered as missing upstream at once; the oldest are forgotten first. */
const MAX_MISSES = 10_000;

export interface MirrorLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export class MirrorRuntime {
  /** Blob downloads by digest. */
  readonly fetches = new SingleFlight<string, BlobFetch>();
  /** Manifest lookups upstream by `namespace/model:tag` or `namespace/model@digest`. */
  readonly lookups = new SingleFlight<string, Promise<unknown>>();
  /** Lookup keys the upstream answered as missing, until that answer expires (ms). */
  private readonly misses = new ExpiringMap<string, true>(MAX_MISSES);
  /** Upstream lookups of names without a copy here, charged per client address. */
  readonly lookupBuckets: TokenBuckets;
  /** Set by `serve` to its logger; silent elsewhere (admin commands report through their own output). */
  log: MirrorLog = { info: () => {}, warn: () => {} };
  readonly spoolDir: string;
  private readonly clients = new Map<string, UpstreamClient>();

  constructor(config: Pick<Config, "dataDir" | "databaseURL" | "mirrorLookupRatePerMinute">) {
    this.lookupBuckets = new TokenBuckets(config.mirrorLookupRatePerMinute);
    // An embedded registry keeps everything in its data directory; one on PostgreSQL writes nothing
    // there (replicas need no volume), so its spool files go to the temporary directory.
    this.spoolDir = config.databaseURL ? join(tmpdir(), "corral-registry-mirror") : join(config.dataDir, "mirror-spool");
  }

  /** Whether `key` was answered as missing upstream less than its time ago. */
  knownMissing(key: string, now = Date.now()): boolean {
    return this.misses.get(key, now) === true;
  }

  /** Remembers that the upstream does not have `key`, for `seconds` (0: not at all). */
  rememberMissing(key: string, seconds: number, now = Date.now()): void {
    if (seconds > 0) this.misses.set(key, true, now + seconds * 1000);
  }

  client(mirror: MirrorConfig): UpstreamClient {
    let c = this.clients.get(mirror.namespace);
    if (!c) this.clients.set(mirror.namespace, (c = new UpstreamClient(mirror)));
    return c;
  }

  /** Cancels the downloads in flight and waits until they have let go of their files. */
  async close(): Promise<void> {
    const running = [...this.fetches.values()];
    for (const f of running) f.cancel("the registry is shutting down");
    await Promise.allSettled(running.map((f) => f.finished));
  }
}
