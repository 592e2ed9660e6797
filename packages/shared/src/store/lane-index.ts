import type { ChainableCommander, Redis } from "ioredis";
import type { RedisKeys } from "../keys.js";
import { commandPipeline, queueCommand } from "./redis-commands.js";

/**
 * The set of lanes that hold jobs (`RedisKeys.lanesWithJobs`): what a claim loop reads
 * instead of every lane in the catalog, so a look at the lanes costs the same whether the
 * catalog has one model or a hundred.
 *
 * A submit adds its lane ({@link queueAdd}, after BullMQ holds the job). Only `syncLane`
 * takes a lane out, and only when no job is left in it in any state (see the script): a
 * claim loop syncs the lanes it found with nothing ready, and the cluster's stalled sweep
 * syncs every lane once per interval, which also adds a lane that holds jobs some other
 * way (jobs queued before this set existed).
 */
export class LaneIndex {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /** The lanes that hold jobs. */
  withJobs(): Promise<string[]> {
    return this.#redis.smembers(this.#keys.lanesWithJobs);
  }

  /** Adds `lane` on a pipeline (a submit's, after the jobs are in BullMQ). */
  queueAdd(pipeline: ChainableCommander, lane: string): void {
    pipeline.sadd(this.#keys.lanesWithJobs, lane);
  }

  /**
   * Adds each lane that holds jobs and removes each that holds none, in one round trip;
   * resolves with the lanes that hold jobs.
   */
  async sync(lanes: readonly string[]): Promise<string[]> {
    if (lanes.length === 0) return [];
    const pipeline = commandPipeline(this.#redis);
    for (const lane of lanes) queueCommand(pipeline, "syncLane", this.#syncKeys(lane), [lane]);
    const replies = (await pipeline.exec()) ?? [];
    return lanes.filter((_, i) => {
      const [error, result] = replies[i] ?? [new Error("missing pipeline reply"), null];
      if (error) throw error;
      return Number(result) === 1;
    });
  }

  #syncKeys(lane: string): string[] {
    // BullMQ's key layout (QueueKeys.toKey): `<prefix>:<queue>:<type>`.
    const bull = (type: string) => `${this.#keys.prefix}:${lane}:${type}`;
    return [
      this.#keys.lanesWithJobs,
      bull("wait"),
      bull("active"),
      bull("prioritized"),
      bull("delayed"),
      bull("paused"),
      this.#keys.fairJobs(lane),
    ];
  }
}
