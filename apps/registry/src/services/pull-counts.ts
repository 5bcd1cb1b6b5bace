// Pull counts: manifest GETs by tag from clients (routes/manifests.ts), shown by the web catalog.
// A GET only adds one to a number in this process's memory; the sums are written together a moment
// later (and at shutdown) as `count = count + n`, so registry replicas sharing one database add up
// instead of overwriting each other, and the hot path never waits for the database. Pages add what
// this process has not written yet, so its own counts show at once.

import { inArray, sql } from "drizzle-orm";
import type { Database } from "../db/open.ts";
import { pullCounts } from "../db/schema.ts";

/** How long counts wait in memory before they are written (they are also written at shutdown). */
export const PULL_FLUSH_MS = 2_000;
/** Distinct repository/tag pairs held before a write is started early. */
const MAX_PENDING_PAIRS = 10_000;
/** Rows per INSERT statement. */
const ROWS_PER_STATEMENT = 500;

export interface PullTotals {
  /** Every counted pull of the model, tags deleted since included. */
  total: number;
  byTag: Map<string, number>;
}

type Counts = Map<number, Map<string, number>>;

function add(into: Counts, repositoryId: number, tag: string, n: number): void {
  let tags = into.get(repositoryId);
  if (!tags) into.set(repositoryId, (tags = new Map()));
  tags.set(tag, (tags.get(tag) ?? 0) + n);
}

export class PullCounter {
  private pending: Counts = new Map();
  private pairs = 0;
  /** Counts taken out of `pending` whose write has not finished: still shown, not yet in the database. */
  private writing: Counts[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly db: Database,
    private readonly flushMs = PULL_FLUSH_MS,
  ) {}

  /** One pull of `tag` (a manifest GET by tag that answered 200). */
  count(repositoryId: number, tag: string): void {
    this.addPending(repositoryId, tag, 1);
  }

  private addPending(repositoryId: number, tag: string, n: number): void {
    if (this.pending.get(repositoryId)?.get(tag) === undefined) this.pairs++;
    add(this.pending, repositoryId, tag, n);
    if (this.pairs >= MAX_PENDING_PAIRS) void this.flush();
    else if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => void this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  /** Writes what is pending; a failed write keeps its counts for the next one. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.pairs = 0;
    this.writing.push(batch);
    this.flushing = this.write(batch)
      .catch(() => {
        for (const [id, tags] of batch) for (const [tag, n] of tags) this.addPending(id, tag, n);
      })
      .finally(() => {
        this.writing = this.writing.filter((b) => b !== batch);
        this.flushing = undefined;
      });
    await this.flushing;
  }

  private async write(batch: Counts): Promise<void> {
    // A fixed order of rows keeps concurrent writers on one database from deadlocking each other.
    const rows = [...batch]
      .sort(([a], [b]) => a - b)
      .flatMap(([id, tags]) => [...tags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([tag, n]) => ({ id, tag, n })));
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      const values = sql.join(
        rows.slice(i, i + ROWS_PER_STATEMENT).map((r) => sql`(${r.id}::int, ${r.tag}::text, ${r.n}::bigint)`),
        sql`, `,
      );
      // Repositories deleted meanwhile are skipped rather than failing the whole statement.
      await this.db.execute(sql`
        insert into ${pullCounts} (repository_id, tag, count)
        select v.repository_id, v.tag, v.count from (values ${values}) as v(repository_id, tag, count)
        where exists (select 1 from repositories r where r.id = v.repository_id)
        on conflict (repository_id, tag) do update set count = ${pullCounts}.count + excluded.count`);
    }
  }

  /** Counts of this process not yet in the database. */
  unwritten(repositoryId: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const c of [this.pending, ...this.writing]) for (const [tag, n] of c.get(repositoryId) ?? []) out.set(tag, (out.get(tag) ?? 0) + n);
    return out;
  }

  /** Writes what is left (at shutdown, after the last request). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}

/** Pulls per repository (and per tag), from the database plus what `counter` has not written yet. */
export async function pullTotals(db: Database, repositoryIds: number[], counter?: PullCounter): Promise<Map<number, PullTotals>> {
  const out = new Map<number, PullTotals>();
  if (repositoryIds.length === 0) return out;
  const rows = await db
    .select({ repositoryId: pullCounts.repositoryId, tag: pullCounts.tag, count: pullCounts.count })
    .from(pullCounts)
    .where(inArray(pullCounts.repositoryId, repositoryIds));
  const entry = (id: number): PullTotals => {
    let e = out.get(id);
    if (!e) out.set(id, (e = { total: 0, byTag: new Map() }));
    return e;
  };
  const addTo = (id: number, tag: string, n: number): void => {
    const e = entry(id);
    e.total += n;
    e.byTag.set(tag, (e.byTag.get(tag) ?? 0) + n);
  };
  for (const r of rows) addTo(r.repositoryId, r.tag, Number(r.count));
  if (counter) for (const id of repositoryIds) for (const [tag, n] of counter.unwritten(id)) addTo(id, tag, n);
  return out;
}
