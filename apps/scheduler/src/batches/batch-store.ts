import type { Redis } from "ioredis";
import {
  BatchLineResult,
  StoredBatch,
  commandPipeline,
  isFinalBatchStatus,
  queueCommand,
  runCommand,
  type BatchRequestCounts,
  type BatchStatus,
  type RedisKeys,
} from "@corral/shared";

/** What a batch's counters hash holds (absent fields are 0, false or null). */
export interface BatchCounters {
  /** Lines may still record results. */
  open: boolean;
  /** Request lines (blank lines excluded), known once validation passed. */
  total: number;
  /** Physical lines of the input file. */
  lines: number;
  completed: number;
  failed: number;
  /** Lines whose job was cancelled (waiting ones removed, running ones aborted). */
  cancelled: number;
  /** Lines the ingest has handled (queued as jobs, or recorded as per-line faults). */
  ingested: number;
  /** Where the ingest resumes: byte offset and line number. */
  ingestOffset: number;
  ingestLine: number;
  ingestDone: boolean;
  /** When the cancel sweep ran (ms), or null. */
  sweptAt: number | null;
  /** The final status the batch is closing to, once closed. */
  closing: BatchStatus | null;
}

/** Ingest position to save. */
export interface IngestProgress {
  offset: number;
  /** Number of the next line to read. */
  line: number;
  ingested: number;
  done: boolean;
}

export interface ListBatchesOptions {
  /** @defaultValue 20 */
  limit?: number;
  /** A batch id: list the batches created before it. */
  after?: string;
}

/**
 * Batches in Redis: the batch object as JSON (`batch:<id>`), its counters and ingest
 * progress (`…:counts`), its line results keyed by custom_id (`…:results`), the lease of
 * the scheduler working on it (`…:lease`), the set of active batches every scheduler's
 * loop walks, and a per-tenant index. Everything a restarted scheduler needs is here.
 */
export class BatchStore {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /** Stores a new batch (status `validating`), open for results, and makes it active. */
  /**
   * Takes a place for batch `id` among the tenant's unfinished batches (at most `limit`):
   * false when the tenant already has that many. Batches that finished since are dropped
   * from the set first.
   */
  async admitActive(tenant: string, id: string, limit: number): Promise<boolean> {
    const set = this.#keys.tenantActiveBatches(tenant);
    const members = await this.#redis.smembers(set);
    const admitted = await runCommand(
      this.#redis,
      "admitBatch",
      [set, ...members.map((member) => this.#keys.batch(member))],
      [limit, id, ...members],
    );
    return admitted === 1;
  }

  /** Gives batch `id`'s place among the tenant's unfinished batches back (its creation failed). */
  async releaseActive(tenant: string, id: string): Promise<void> {
    await this.#redis.srem(this.#keys.tenantActiveBatches(tenant), id);
  }

  async create(batch: StoredBatch, lines: number, createdAtMs: number): Promise<void> {
    const result = await this.#redis
      .multi()
      .set(this.#keys.batch(batch.id), JSON.stringify(StoredBatch.parse(batch)), "NX")
      .hset(this.#keys.batchCounts(batch.id), { open: 1, total: 0, lines })
      .zadd(this.#keys.tenantBatches(batch.tenant), createdAtMs, batch.id)
      .sadd(this.#keys.activeBatches, batch.id)
      .hincrby(this.#keys.batchStatusCounts, batch.status, 1)
      .exec();
    if (result?.[0]?.[1] !== "OK") throw new Error(`batch ${batch.id} already exists`);
  }

  async get(id: string): Promise<StoredBatch | null> {
    const raw = await this.#redis.get(this.#keys.batch(id));
    return raw === null ? null : parseBatch(raw);
  }

  async counters(id: string): Promise<BatchCounters> {
    return toCounters(await this.#redis.hgetall(this.#keys.batchCounts(id)));
  }

  /** Counters of many batches in one round trip. */
  async countersMany(ids: readonly string[]): Promise<BatchCounters[]> {
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.#keys.batchCounts(id));
    const results = (await pipeline.exec()) ?? [];
    return results.map(([error, value]) => {
      if (error) throw error;
      return toCounters(value as Record<string, string>);
    });
  }

  /** OpenAI's request counts: stored on a final batch, live from the counters otherwise (cancelled lines count as failed). */
  async requestCounts(batch: StoredBatch): Promise<BatchRequestCounts> {
    if (isFinalBatchStatus(batch.status)) return batch.request_counts;
    return liveRequestCounts(await this.counters(batch.id));
  }

  /** Applies `patch` when the batch's status is one of `from`, atomically; null when it is not (or the batch is gone). */
  async transition(id: string, from: readonly BatchStatus[], patch: Partial<StoredBatch>): Promise<StoredBatch | null> {
    const raw = await runCommand(
      this.#redis,
      "transitionBatch",
      [this.#keys.batch(id), this.#keys.activeBatches, this.#keys.batchStatusCounts],
      [JSON.stringify(from), JSON.stringify(patch), id],
    );
    return raw === null ? null : parseBatch(raw);
  }

  /** Ids of the batches that are not final. */
  activeIds(): Promise<string[]> {
    return this.#redis.smembers(this.#keys.activeBatches);
  }

  /** Number of batches in each status (all tenants). */
  async statusCounts(): Promise<Record<string, number>> {
    const raw = await this.#redis.hgetall(this.#keys.batchStatusCounts);
    return Object.fromEntries(Object.entries(raw).map(([status, n]) => [status, Number(n)]));
  }

  /** The tenant's batches, newest first. */
  async listForTenant(
    tenant: string,
    options: ListBatchesOptions = {},
  ): Promise<{ data: StoredBatch[]; has_more: boolean }> {
    const limit = options.limit ?? 20;
    const index = this.#keys.tenantBatches(tenant);
    let max = "+inf";
    if (options.after !== undefined) {
      const score = await this.#redis.zscore(index, options.after);
      if (score === null) return { data: [], has_more: false };
      max = `(${score}`;
    }
    const data: StoredBatch[] = [];
    let offset = 0;
    for (;;) {
      const ids = await this.#redis.zrevrangebyscore(index, max, "-inf", "LIMIT", offset, limit + 1);
      if (ids.length === 0) return { data, has_more: false };
      offset += ids.length;
      const raws = await this.#redis.mget(ids.map((id) => this.#keys.batch(id)));
      for (const raw of raws) {
        if (raw === null) continue;
        if (data.length === limit) return { data, has_more: true };
        data.push(parseBatch(raw));
      }
    }
  }

  /** Takes the batch's lease for `ms` when nobody holds it. */
  async acquireLease(id: string, token: string, ms: number): Promise<boolean> {
    return (await this.#redis.set(this.#keys.batchLease(id), token, "PX", ms, "NX")) === "OK";
  }

  /** Extends the lease; false when it is no longer the caller's. */
  async renewLease(id: string, token: string, ms: number): Promise<boolean> {
    return (await runCommand(this.#redis, "renewLease", [this.#keys.batchLease(id)], [token, ms])) === 1;
  }

  async releaseLease(id: string, token: string): Promise<void> {
    await runCommand(this.#redis, "releaseLease", [this.#keys.batchLease(id)], [token]);
  }

  /**
   * Saves ingest progress (and renews the lease) if the caller still holds the lease:
   * "saved", "stopped" (saved, but the batch left in_progress: a cancel) or "lost".
   */
  async saveProgress(
    id: string,
    token: string,
    leaseMs: number,
    progress: IngestProgress,
  ): Promise<"saved" | "stopped" | "lost"> {
    const saved = await runCommand(
      this.#redis,
      "saveIngestProgress",
      [this.#keys.batchLease(id), this.#keys.batchCounts(id), this.#keys.batch(id)],
      [
        token,
        leaseMs,
        "ingest_offset",
        progress.offset,
        "ingest_line",
        progress.line,
        "ingested",
        progress.ingested,
        "ingest_done",
        progress.done ? 1 : 0,
      ],
    );
    return saved === 1 ? "saved" : saved === 2 ? "stopped" : "lost";
  }

  /** Sets counters fields (total, lines, swept_at, ingest_done…). */
  async setCounters(id: string, fields: Record<string, string | number>): Promise<void> {
    await this.#redis.hset(this.#keys.batchCounts(id), fields);
  }

  /**
   * Records results of lines that never became jobs (per-line faults), each exactly once
   * per custom_id and counted as failed. Returns how many were new.
   */
  async recordLineResults(
    id: string,
    entries: readonly { customId: string; result: BatchLineResult }[],
  ): Promise<number> {
    if (entries.length === 0) return 0;
    const pipeline = commandPipeline(this.#redis);
    for (const { customId, result } of entries) {
      queueCommand(
        pipeline,
        "recordLine",
        [this.#keys.batchResults(id), this.#keys.batchCounts(id)],
        [customId, JSON.stringify(result), "failed"],
      );
    }
    const results = (await pipeline.exec()) ?? [];
    let added = 0;
    for (const [error, value] of results) {
      if (error) throw error;
      added += value === 1 ? 1 : 0;
    }
    return added;
  }

  /** Closes the batch to new results, towards `target`. False when it is already closing to another status. */
  async close(id: string, target: BatchStatus): Promise<boolean> {
    return (await runCommand(this.#redis, "closeBatch", [this.#keys.batchCounts(id)], [target])) === 1;
  }

  /** The results recorded for these custom_ids (null where none). */
  async results(id: string, customIds: readonly string[]): Promise<(BatchLineResult | null)[]> {
    if (customIds.length === 0) return [];
    const raws = await this.#redis.hmget(this.#keys.batchResults(id), ...customIds);
    return raws.map((raw) => (raw === null ? null : BatchLineResult.parse(JSON.parse(raw))));
  }

  /** Drops the counters and results of a final batch (its counts are on the batch object by then). */
  async dropWorkingState(id: string): Promise<void> {
    await this.#redis.unlink(this.#keys.batchResults(id), this.#keys.batchCounts(id), this.#keys.batchLease(id));
  }
}

/** OpenAI's request counts from live counters: cancelled lines count as failed. */
export function liveRequestCounts(c: BatchCounters): BatchRequestCounts {
  return { total: c.total, completed: c.completed, failed: c.failed + c.cancelled };
}

/** Never stores an empty array: Redis's cjson would write it back as `{}`. */
function parseBatch(raw: string): StoredBatch {
  return StoredBatch.parse(JSON.parse(raw));
}

function toCounters(raw: Record<string, string>): BatchCounters {
  const n = (field: string): number => Number(raw[field] ?? 0);
  return {
    open: raw.open === "1",
    total: n("total"),
    lines: n("lines"),
    completed: n("completed"),
    failed: n("failed"),
    cancelled: n("cancelled"),
    ingested: n("ingested"),
    ingestOffset: n("ingest_offset"),
    ingestLine: raw.ingest_line === undefined ? 1 : n("ingest_line"),
    ingestDone: raw.ingest_done === "1",
    sweptAt: raw.swept_at === undefined ? null : n("swept_at"),
    closing: (raw.closing as BatchStatus | undefined) ?? null,
  };
}
