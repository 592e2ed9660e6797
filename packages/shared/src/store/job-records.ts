import type { Redis } from "ioredis";
import { JobRecord, isFinalStatus, type JobStatus } from "../schemas/job-record.js";
import type { RedisKeys } from "../keys.js";
import { runCommand } from "./redis-commands.js";

/**
 * Largest final record (JSON bytes) published whole on the job-events channel; a larger
 * one (embeddings, long texts) is published as its id alone, and waiters read it back.
 */
export const JOB_EVENT_RECORD_MAX_BYTES = 16 * 1024;

/** A message of the job-events channel: the job id, and its final record when it was small enough. */
export interface JobEvent {
  id: string;
  /** The final record's JSON, or null when only the id was published. */
  record: string | null;
}

/** Splits a job-events message (`<id>` or `<id> <record JSON>`). */
export function parseJobEvent(message: string): JobEvent {
  const space = message.indexOf(" ");
  return space === -1
    ? { id: message, record: null }
    : { id: message.slice(0, space), record: message.slice(space + 1) };
}

/** How long a finished job's record is kept. */
export const FINISHED_RECORD_TTL_SECONDS = 7 * 24 * 3600;

export interface ListJobsOptions {
  status?: JobStatus;
  /** @defaultValue 20 */
  limit?: number;
  /** A job id: list the jobs created before it (newest first). */
  after?: string;
}

/**
 * Job records (what `GET /v1/jobs/:id` returns), stored as JSON under `job:<id>`, with a
 * per-tenant sorted set for listing. Both the scheduler and the workers write here;
 * this class takes their Redis connection and does no I/O of its own beyond it.
 *
 * A record moves forward only: queued → running → succeeded | failed | cancelled.
 * The first final state wins, so a job that ran twice (a worker died mid-job) records
 * exactly one result.
 */
export class JobRecords {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async create(record: JobRecord): Promise<void> {
    const value = JSON.stringify(JobRecord.parse(record));
    const created = await this.#redis
      .multi()
      .set(this.#keys.job(record.id), value, "NX")
      .zadd(this.#keys.tenantJobs(record.tenant), record.created_at, record.id)
      .exec();
    if (created?.[0]?.[1] !== "OK") throw new Error(`job ${record.id} already exists`);
  }

  /**
   * Writes many records in one round trip, each listed in its tenant's jobs. A record whose
   * id exists is left as it is (SET NX), so writing the same records again changes nothing.
   * (A batch ingest's records are written by TenantQueueCap's admitJobs, unlisted.)
   */
  async createMany(records: readonly JobRecord[]): Promise<void> {
    if (records.length === 0) return;
    const pipeline = this.#redis.pipeline();
    for (const record of records) {
      pipeline.set(this.#keys.job(record.id), JSON.stringify(record), "NX");
      pipeline.zadd(this.#keys.tenantJobs(record.tenant), record.created_at, record.id);
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error !== null);
    if (failed?.[0]) throw failed[0];
  }

  async get(id: string): Promise<JobRecord | null> {
    const raw = await this.#redis.get(this.#keys.job(id));
    return raw === null ? null : JobRecord.parse(JSON.parse(raw));
  }

  /** Many records in one round trip (MGET), in order; null where one is missing. */
  async getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    if (ids.length === 0) return [];
    const raws = await this.#redis.mget(ids.map((id) => this.#keys.job(id)));
    return raws.map((raw) => (raw === null ? null : JobRecord.parse(JSON.parse(raw))));
  }

  /** Deletes records (UNLINK) in one round trip: a finalized batch's lines, whose results are in its files. */
  async removeMany(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#redis.unlink(...ids.map((id) => this.#keys.job(id)));
  }

  /** The record if it belongs to `tenant`; otherwise null, exactly as if it did not exist. */
  async getForTenant(id: string, tenant: string): Promise<JobRecord | null> {
    const record = await this.get(id);
    return record && record.tenant === tenant ? record : null;
  }

  /**
   * Applies `patch` if the record's status is one of `from`, atomically (a Lua script,
   * so it is safe on a connection shared by concurrent callers). Returns the new record,
   * or null when the record is missing or in another status (a final one, typically).
   * Final transitions set the record's TTL and publish the job id on the job-events channel,
   * with the record when it is at most {@link JOB_EVENT_RECORD_MAX_BYTES} (see {@link parseJobEvent}).
   *
   * A final transition of a batch line also records the line's result in its batch; the
   * script gets that batch's keys from `batchId` (the record's `batch_id`, which callers
   * know from the payload or a record they read). When it is not given and the record
   * turns out to be a batch line, the script writes nothing and names the batch, and the
   * call is repeated with its keys (one more round trip, off the hot paths).
   *
   * Job state changes go through {@link JobTransitions}, which owns the allowed moves.
   */
  async transition(
    id: string,
    from: readonly JobStatus[],
    patch: Partial<JobRecord>,
    batchId: string | null = null,
  ): Promise<JobRecord | null> {
    const final = patch.status !== undefined && isFinalStatus(patch.status);
    const run = (batch: string) =>
      runCommand(
        this.#redis,
        "transitionJob",
        [this.#keys.job(id), this.#keys.batchResults(batch), this.#keys.batchCounts(batch)],
        [
          JSON.stringify(from),
          JSON.stringify(patch),
          final ? FINISHED_RECORD_TTL_SECONDS : 0,
          this.#keys.jobEventsChannel,
          id,
          batch,
          JOB_EVENT_RECORD_MAX_BYTES,
        ],
      );
    let raw: string | null;
    try {
      raw = await run(batchId ?? "");
    } catch (error) {
      const named = batchKeysNeeded(error);
      if (named === null || named === batchId) throw error;
      raw = await run(named);
    }
    return raw === null ? null : JobRecord.parse(JSON.parse(raw));
  }

  /** The tenant's jobs, newest first. */
  async listForTenant(
    tenant: string,
    options: ListJobsOptions = {},
  ): Promise<{ data: JobRecord[]; has_more: boolean }> {
    const limit = options.limit ?? 20;
    const index = this.#keys.tenantJobs(tenant);
    let max = "+inf";
    if (options.after) {
      const score = await this.#redis.zscore(index, options.after);
      if (score === null) return { data: [], has_more: false };
      max = `(${score}`;
    }
    const data: JobRecord[] = [];
    let offset = 0;
    const page = Math.max(limit * 2, 50);
    // Walk the index newest first, skipping expired records and other statuses.
    for (;;) {
      const ids = await this.#redis.zrevrangebyscore(index, max, "-inf", "LIMIT", offset, page);
      if (ids.length === 0) return { data, has_more: false };
      offset += ids.length;
      const raws = await this.#redis.mget(ids.map((id) => this.#keys.job(id)));
      const stale: string[] = [];
      for (const [i, raw] of raws.entries()) {
        if (raw === null) {
          stale.push(ids[i]!);
          continue;
        }
        const record = JobRecord.parse(JSON.parse(raw));
        if (options.status && record.status !== options.status) continue;
        if (data.length === limit) return { data, has_more: true };
        data.push(record);
      }
      if (stale.length) {
        await this.#redis.zrem(index, ...stale);
        offset -= stale.length;
      }
    }
  }
}

/** The batch id named by transitionJob's "CORRAL_BATCH_KEYS <batch id>" error reply, or null for any other error. */
function batchKeysNeeded(error: unknown): string | null {
  const message = error instanceof Error ? error.message : "";
  const match = /^CORRAL_BATCH_KEYS (.+)$/.exec(message);
  return match ? match[1]! : null;
}
