import type { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  JobRecords,
  JobTransitions,
  laneName,
  type CatalogModel,
  type JobError,
  type JobRecord,
  type RedisKeys,
} from "@corral/shared";
import type { LaneQueues } from "./lane-queues.js";
import { TenantQueueCap } from "./tenant-queue-cap.js";

export interface RemovedModelJobsOptions {
  /** Command connection (not owned). */
  redis: Redis;
  keys: RedisKeys;
  lanes: LaneQueues;
  logger: Logger;
  /**
   * How long a lane's model must stay out of the catalog before its waiting jobs fail: a
   * model file being replaced (deleted, then written again) fails nothing.
   * @defaultValue 10000
   */
  graceMs?: number;
  /**
   * Scans the models folder again (the catalog's `rescan`), called once a grace period has
   * run out, so the decision is made on the folder as it is then.
   * @defaultValue none (the next {@link RemovedModelJobs.check} decides)
   */
  rescan?: () => Promise<void>;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** Jobs read per round trip while failing a lane's waiting jobs. */
const PAGE = 500;

/**
 * Fails the waiting jobs of models that left the catalog. {@link check} runs after every
 * catalog scan: a lane (of the `lanes` set) that no catalog model maps to is noted; once
 * it has stayed so for `graceMs` (checked again then), each of its waiting jobs (held for
 * fair claim, released to the wait list, parked, or waiting out a retry) is removed from
 * BullMQ and its record moves queued → failed with `model_removed`; its fair-claim entry
 * goes too. Running jobs are left to their workers. A scheduler that starts while a
 * model is gone fails its jobs one grace period later; replicas doing the same is harmless
 * (each move applies once).
 */
export class RemovedModelJobs {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #lanes: LaneQueues;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #rescan: (() => Promise<void>) | null;
  readonly #now: () => number;
  readonly #records: JobRecords;
  readonly #moves: JobTransitions;
  readonly #cap: TenantQueueCap;
  /** Lanes without a model, since when (ms). */
  readonly #absentSince = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #checking: Promise<number> = Promise.resolve(0);
  #closed = false;

  constructor(options: RemovedModelJobsOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#lanes = options.lanes;
    this.#log = options.logger.child({ component: "removed-models" });
    this.#graceMs = options.graceMs ?? 10_000;
    if (!(this.#graceMs >= 0)) throw new RangeError(`graceMs must be ≥ 0, got ${this.#graceMs}`);
    this.#rescan = options.rescan ?? null;
    this.#now = options.now ?? Date.now;
    this.#records = new JobRecords(options.redis, options.keys);
    this.#moves = new JobTransitions(this.#records);
    this.#cap = new TenantQueueCap({ redis: options.redis, keys: options.keys, max: Number.MAX_SAFE_INTEGER });
  }

  /**
   * Notes the lanes the catalog `models` leave without a model and fails the waiting jobs
   * of those gone for `graceMs`. Calls run one after another. Resolves with the jobs failed;
   * never rejects (a failure is logged, and the next check tries again).
   */
  check(models: readonly CatalogModel[]): Promise<number> {
    const next = this.#checking.then(() => this.#checkOnce(models));
    this.#checking = next;
    return next;
  }

  /** Stops the grace timer. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #checkOnce(models: readonly CatalogModel[]): Promise<number> {
    if (this.#closed) return 0;
    try {
      const served = new Set(models.map((model) => laneName(model.id)));
      const known = await this.#lanes.known();
      const now = this.#now();
      for (const lane of [...this.#absentSince.keys()]) if (served.has(lane)) this.#absentSince.delete(lane);
      let failed = 0;
      let nextDue: number | null = null;
      for (const lane of known) {
        if (served.has(lane)) continue;
        const since = this.#absentSince.get(lane);
        if (since === undefined) {
          this.#absentSince.set(lane, now);
          nextDue = Math.min(nextDue ?? Infinity, now + this.#graceMs);
        } else if (now - since >= this.#graceMs) {
          failed += await this.#failLane(lane);
        } else {
          nextDue = Math.min(nextDue ?? Infinity, since + this.#graceMs);
        }
      }
      if (nextDue !== null) this.#schedule(nextDue - now, models);
      return failed;
    } catch (error) {
      this.#log.warn({ err: error }, "failing the jobs of removed models failed; the next scan tries again");
      return 0;
    }
  }

  /** Checks again once the earliest grace period runs out (after a rescan, when given). */
  #schedule(delayMs: number, models: readonly CatalogModel[]): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        if (this.#rescan) void this.#rescan();
        else void this.check(models);
      },
      Math.max(0, delayMs) + 50,
    );
    this.#timer.unref();
  }

  /** Fails every waiting job of a lane whose model is gone; resolves with how many. */
  async #failLane(lane: string): Promise<number> {
    const queue = this.#lanes.get(lane);
    const fairKey = this.#keys.fairJobs(lane);
    const entries = await this.#redis.zrange(fairKey, 0, -1);
    const entryOf = new Map(entries.map((member) => [member.split("|").slice(4).join("|"), member]));
    const ids = new Set(entryOf.keys());
    for (let start = 0; ; start += PAGE) {
      const page = await queue.getRanges(["wait", "prioritized", "delayed"], start, start + PAGE - 1, true);
      for (const id of page) ids.add(id);
      if (page.length < PAGE) break;
    }
    if (ids.size === 0) return 0;

    const list = [...ids];
    let failed = 0;
    const gone: string[] = [];
    for (let i = 0; i < list.length; i += PAGE) {
      const chunk = list.slice(i, i + PAGE);
      const records = await this.#records.getMany(chunk);
      for (const [j, id] of chunk.entries()) {
        const record = records[j] ?? null;
        if (record === null || record.status !== "queued" || laneName(record.model) !== lane) {
          // A final or missing record: only its stale entry goes.
          if (record === null || record.status !== "queued") gone.push(id);
          continue;
        }
        if (await this.#failJob(queue, record)) {
          failed++;
          gone.push(id);
        }
      }
    }
    const members = gone.map((id) => entryOf.get(id)).filter((member) => member !== undefined);
    if (members.length > 0) await this.#dropEntries(lane, members);
    if (failed > 0)
      this.#log.warn(
        { lane, failed, graceMs: this.#graceMs },
        "failed %d waiting jobs: their model left the catalog and did not come back",
        failed,
      );
    return failed;
  }

  /** Removes the job from BullMQ and fails its record; false when a worker holds it (it decides). */
  async #failJob(queue: ReturnType<LaneQueues["get"]>, record: JobRecord): Promise<boolean> {
    const removed = await queue.remove(record.id);
    // 0: locked by a worker that took it meanwhile (leave it), or already gone (fail it: nothing else will).
    if (removed === 0 && (await queue.getJob(record.id)) !== undefined) return false;
    const error: JobError = {
      code: "model_removed",
      message: `The model \`${record.model}\` was removed from the catalog (its file was deleted or models.yaml dropped it) while the job waited, and did not come back within ${Math.round(this.#graceMs / 1000)} s.`,
    };
    const moved = await this.#moves.failQueued(record, this.#now(), error);
    try {
      await this.#cap.release(record.tenant, record.id);
    } catch (releaseError) {
      this.#log.warn({ err: releaseError, job_id: record.id }, "could not release a queued-cap entry");
    }
    return moved !== null;
  }

  /**
   * Drops fair-claim entries, then the tenants left without one and, when the lane holds
   * nothing more, its waiting mark (what a release does for entries it serves).
   */
  async #dropEntries(lane: string, members: readonly string[]): Promise<void> {
    const jobsKey = this.#keys.fairJobs(lane);
    const tenantsKey = this.#keys.fairTenants(lane);
    for (let i = 0; i < members.length; i += PAGE) await this.#redis.zrem(jobsKey, ...members.slice(i, i + PAGE));
    const tenants = [...new Set(members.map((member) => member.slice(0, member.indexOf("|"))))];
    for (const tenant of tenants) {
      if ((await this.#redis.zlexcount(jobsKey, `[${tenant}|`, `(${tenant}|~`)) === 0)
        await this.#redis.zrem(tenantsKey, tenant);
    }
    if ((await this.#redis.zcard(jobsKey)) === 0) await this.#redis.zrem(tenantsKey, "|since");
  }
}
