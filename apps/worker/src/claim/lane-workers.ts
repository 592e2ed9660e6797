import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Job, Worker, createRedisBackend, type BackendFactory, type JobJson, type RedisQueueBackend } from "bullmq";
import { LaneIndex, type JobPayload, type RedisKeys } from "@corral/shared";
import type { LaneLocks } from "./lock-keeper.js";

export interface LaneWorkersOptions {
  /** The slot's one connection (maxRetriesPerRequest: null), which every lane's Worker shares. */
  connection: Redis;
  keys: RedisKeys;
  stalledIntervalMs: number;
  lockDurationMs: number;
  logger: Logger;
  /** Names the slot in the stalled-sweep key (`RedisKeys.stalledSweep`), for operators. */
  owner?: string;
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
 * BullMQ's Redis backend for a Worker that never blocks: on the caller's connection, with
 * no dedicated blocking connection. BullMQ gives every Worker one (for `BZPOPMIN` in
 * `getNextJob(token, {block: true})`); the claim loop only fetches with `block: false`
 * and waits on the lanes' markers itself (`LaneMarkers`, one connection for all lanes).
 * So a slot holds the same few connections whatever the number of lanes, instead of one
 * more per lane (100 models on 64 GPUs would have made 6,400).
 */
const sharedConnectionBackend: BackendFactory<RedisQueueBackend> = (name, opts) =>
  createRedisBackend(name, { ...opts, skipVersionCheck: true }, { withBlockingConnection: false });

/**
 * One BullMQ `Worker` per lane, created the first time the slot claims from the lane (or sweeps it), with no
 * processor, all on the slot's one connection: the claim loop fetches jobs itself
 * (`getNextJob` without blocking) and finishes them with `moveToCompleted` /
 * `moveToFailed`.
 *
 * The stalled-job check (BullMQ's `moveStalledJobsToWait`, which brings back the jobs of a
 * slot that died) runs once per stalled interval for the whole cluster, not once per lane
 * per slot: every quarter interval each slot tries to take `RedisKeys.stalledSweep` for one
 * interval (`SET NX PX`), and the slot that takes it checks every lane in one pipelined
 * round trip, lanes this slot cannot run included, and syncs each lane's place among the
 * lanes with jobs (`LaneIndex`). A slot costs one command per quarter
 * interval however many lanes there are; BullMQ's own per-lane `stalled-check` key still
 * keeps each lane to one check per interval. All workers must share `stalledInterval` and
 * `lockDuration`.
 */
export class LaneWorkers implements LaneLocks {
  readonly #options: LaneWorkersOptions;
  readonly #workers = new Map<string, Worker<JobPayload, unknown, string>>();
  readonly #log: Logger;
  readonly #index: LaneIndex;
  #closed = false;
  #sweepTimer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;

  constructor(options: LaneWorkersOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#index = new LaneIndex(options.connection, options.keys);
  }

  /** Starts the stalled sweep (see the class). Idempotent. */
  start(): void {
    if (this.#closed || this.#sweepTimer) return;
    const everyMs = Math.max(10, Math.floor(this.#options.stalledIntervalMs / 4));
    this.#sweepTimer = setInterval(() => {
      this.#sweeping ??= this.sweepStalled()
        .then(() => undefined)
        .catch((error: unknown) => this.#log.warn({ err: error }, "stalled-job sweep failed"))
        .finally(() => (this.#sweeping = null));
    }, everyMs);
    this.#sweepTimer.unref();
  }

  /**
   * Runs the stalled-job check of every lane when no slot ran it this interval; resolves
   * with the ids of the jobs it brought back (`null` when another slot had the turn).
   */
  async sweepStalled(): Promise<string[] | null> {
    const { connection, keys, stalledIntervalMs } = this.#options;
    const owner = this.#options.owner ?? `pid ${process.pid}`;
    const took = await connection.set(keys.stalledSweep, owner, "PX", stalledIntervalMs, "NX");
    if (took === null || this.#closed) return null;
    const lanes = await connection.smembers(keys.lanes);
    this.ensure(lanes);
    const stalled = await Promise.all(
      lanes.map(async (lane) => {
        const worker = this.#workers.get(lane);
        if (!worker) return [];
        const ids = await worker.getBackend().moveStalledJobsToWait();
        if (ids.length > 0) this.#log.info({ lane, jobs: ids }, "stalled jobs moved back to wait");
        return ids;
      }),
    );
    // And every lane's place among the lanes with jobs, in case a lane got jobs some other
    // way than a submit (jobs queued before that set existed).
    await this.#index.sync(lanes, Date.now());
    return stalled.flat();
  }

  /** Makes sure each lane has its Worker (no connection of its own: see the class). */
  ensure(lanes: Iterable<string>): void {
    for (const lane of lanes) {
      if (this.#closed || this.#workers.has(lane)) continue;
      const worker = new Worker<JobPayload, unknown, string>(
        lane,
        null,
        {
          connection: this.#options.connection,
          prefix: this.#options.keys.prefix,
          autorun: false,
          stalledInterval: this.#options.stalledIntervalMs,
          lockDuration: this.#options.lockDurationMs,
          maxStalledCount: MAX_STALLED_COUNT,
        },
        sharedConnectionBackend,
      );
      worker.on("error", (error) => this.#log.warn({ err: error, lane }, "BullMQ worker error"));
      this.#workers.set(lane, worker);
    }
  }

  /** Claims the lane's next job without blocking; undefined when it has none. */
  async next(lane: string, token: string): Promise<LaneJob | undefined> {
    this.ensure([lane]);
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

  /** Stops the sweep and closes every Worker (the shared connection stays open). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = null;
    await this.#sweeping;
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
