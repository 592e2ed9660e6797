import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Job, Worker, type JobJson } from "bullmq";
import type { JobPayload, RedisKeys } from "@corral/shared";
import type { LaneLocks } from "./lock-keeper.js";

export interface LaneWorkersOptions {
  /** Shared connection (maxRetriesPerRequest: null); each Worker adds its own blocking one. */
  connection: Redis;
  keys: RedisKeys;
  stalledIntervalMs: number;
  lockDurationMs: number;
  logger: Logger;
}

export type LaneJob = Job<JobPayload, unknown, string>;

/**
 * BullMQ's own limit on stalls (`maxStalledCount`), set so that it never comes first:
 * BullMQ counts stalls (`stalledCounter`) apart from attempts (`attemptsMade`), and fails a
 * job past this many stalls whatever its attempts. Corral's one limit is the job's
 * attempts (`CORRAL_JOB_ATTEMPTS`): `JobRunner` fails a claimed job whose attemptsMade +
 * stalledCounter reached them, with `job_stalled`.
 */
export const MAX_STALLED_COUNT = Number.MAX_SAFE_INTEGER;

/**
 * One BullMQ `Worker` per lane, created the first time the slot sees the lane, with no
 * processor: the claim loop fetches jobs itself (`getNextJob`) and finishes them with
 * `moveToCompleted` / `moveToFailed`. Each Worker runs BullMQ's stalled-job checker for
 * its lane, so the jobs of a slot that died come back even on lanes this slot cannot
 * run. All workers must share `stalledInterval` and `lockDuration`: the check is
 * coordinated through one Redis key per lane.
 */
export class LaneWorkers implements LaneLocks {
  readonly #options: LaneWorkersOptions;
  readonly #workers = new Map<string, Worker<JobPayload, unknown, string>>();
  readonly #log: Logger;
  #closed = false;

  constructor(options: LaneWorkersOptions) {
    this.#options = options;
    this.#log = options.logger;
  }

  /** Makes sure each lane has its Worker and stalled checker. */
  async ensure(lanes: Iterable<string>): Promise<void> {
    const started: Promise<void>[] = [];
    for (const lane of lanes) {
      if (this.#closed || this.#workers.has(lane)) continue;
      const worker = new Worker<JobPayload, unknown, string>(lane, null, {
        connection: this.#options.connection,
        prefix: this.#options.keys.prefix,
        autorun: false,
        stalledInterval: this.#options.stalledIntervalMs,
        lockDuration: this.#options.lockDurationMs,
        maxStalledCount: MAX_STALLED_COUNT,
      });
      worker.on("error", (error) => this.#log.warn({ err: error, lane }, "BullMQ worker error"));
      this.#workers.set(lane, worker);
      started.push(worker.startStalledCheckTimer());
    }
    await Promise.all(started);
  }

  /** Claims the lane's next job without blocking; undefined when it has none. */
  async next(lane: string, token: string): Promise<LaneJob | undefined> {
    await this.ensure([lane]);
    const worker = this.#workers.get(lane);
    if (!worker) return undefined;
    return (await worker.getNextJob(token, { block: false })) ?? undefined;
  }

  /**
   * The job a fetch-next completion (`moveToCompleted(…, token, true)`) brought back, as
   * `getNextJob` would have returned it (locked with `token`); undefined when the lane had
   * none, or the slot is closing.
   */
  fromCompletion(lane: string, completion: unknown, token: string): LaneJob | undefined {
    const worker = this.#workers.get(lane);
    if (!worker || !Array.isArray(completion)) return undefined;
    const [data, id] = completion as [JobJson | null | undefined, string | undefined];
    if (!data || !id) return undefined;
    const job = Job.fromJSON<JobPayload, unknown, string>(worker, data, id);
    job.token = token;
    return job;
  }

  /**
   * Extends the locks of the lane's jobs this slot holds, in one call (BullMQ's
   * `extendLocks`, which its own `LockManager` uses); resolves with the ids it did not renew.
   */
  async extendLocks(
    lane: string,
    ids: readonly string[],
    tokens: readonly string[],
    durationMs: number,
  ): Promise<string[]> {
    const worker = this.#workers.get(lane);
    if (!worker) throw new Error(`no BullMQ worker for lane ${lane} (closed?)`);
    return worker.extendJobLocks([...ids], [...tokens], durationMs);
  }

  get size(): number {
    return this.#workers.size;
  }

  /** Closes every Worker (their blocking connections; the shared one stays open). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const workers = [...this.#workers.values()];
    this.#workers.clear();
    await Promise.all(
      workers.map(async (worker) => {
        try {
          await worker.close(true);
        } catch (error) {
          this.#log.warn({ err: error, lane: worker.name }, "closing a BullMQ worker failed");
        }
      }),
    );
  }
}
