// Rate limiting of the endpoints that verify signatures and write nonces (GET /v2/token and the
// login-link request): a token bucket per client address and one per signing key, so neither one
// address nor one key spread over many addresses can make the registry verify signatures and
// insert nonces without bound. The buckets live in this process's memory, so the limit holds per
// replica: behind a load balancer spreading one client over N replicas it admits up to N times
// the configured rate, which still bounds the work each replica does. The middleware that charges
// the buckets is middleware/rate-limit.ts; each registry has its own (Registry.tokenBuckets).

/** Most distinct clients tracked at once; the least recently seen are forgotten first. */
const MAX_BUCKETS = 50_000;

interface Bucket {
  tokens: number;
  /** ms timestamp the bucket was last refilled. */
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  /** `perMinute` requests a minute, with bursts of as many; 0 turns the limit off. */
  constructor(
    readonly perMinute: number,
    private readonly max = MAX_BUCKETS,
  ) {}

  /** Takes one token for `client`; answers 0 when granted, else the seconds until one is available. */
  take(client: string, now = Date.now()): number {
    if (this.perMinute <= 0) return 0;
    const capacity = Math.max(1, this.perMinute);
    const perMs = this.perMinute / 60_000;
    let b = this.buckets.get(client);
    if (b) {
      this.buckets.delete(client);
      b.tokens = Math.min(capacity, b.tokens + (now - b.at) * perMs);
      b.at = now;
    } else {
      if (this.buckets.size >= this.max) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: capacity, at: now };
    }
    // Re-inserted so iteration order is least recently seen first.
    this.buckets.set(client, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }
}
