import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { bullPriority, laneName, readFairPosition, type JobRecord, type RedisKeys } from "@corral/shared";

export interface QueuePositionsOptions {
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** @defaultValue Date.now */
  now?: () => number;
}

/**
 * Adds `queue_position` and `estimated_start_at` to a queued job's record, as
 * `GET /v1/jobs/:id` shows them ({@link readFairPosition}: estimates). A record that is not
 * queued, or a job that is not held for fair claim nor waiting to be taken, comes back as
 * it was, and so does any record when Redis cannot be read: the record matters more.
 */
export class QueuePositions {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;
  readonly #now: () => number;

  constructor(options: QueuePositionsOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  async annotate(record: JobRecord): Promise<JobRecord> {
    if (record.status !== "queued") return record;
    try {
      const found = await readFairPosition(
        this.#redis,
        this.#keys,
        {
          id: record.id,
          tenant: record.tenant,
          lane: laneName(record.model),
          level: bullPriority(record.source, record.priority),
          createdAt: record.created_at,
        },
        { now: this.#now() },
      );
      if (found === null) return record;
      return {
        ...record,
        queue_position: found.position,
        ...(found.estimatedStartAt !== null ? { estimated_start_at: found.estimatedStartAt } : {}),
      };
    } catch (error) {
      this.#logger.warn({ err: error, job_id: record.id }, "could not read the job's queue position");
      return record;
    }
  }
}
