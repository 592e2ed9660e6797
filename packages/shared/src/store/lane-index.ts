import type { Redis } from "ioredis";
import type { RedisKeys } from "../keys.js";
import { commandPipeline, queueCommand } from "./redis-commands.js";

/**
 * The score of a lane that holds jobs, none of them ready (all running, parked, or retrying
 * after a backoff): after every waiting lane, whose scores are times in ms. The Lua scripts'
 * `NOTHING_HELD` (`commands/includes/nothingHeld.lua`).
 */
export const NOTHING_HELD = 1e15;

/** A lane that holds jobs, and its clock: since when its ready jobs wait, or {@link NOTHING_HELD}. */
export interface LaneWithJobs {
  lane: string;
  /** When the lane's jobs started waiting, or it was last served, ms; {@link NOTHING_HELD} when none is ready. */
  waitingSince: number;
}

/**
 * The lanes that hold jobs (`RedisKeys.lanesWithJobs`, a sorted set): what a claim loop
 * reads instead of every lane in the catalog, so a look at the lanes costs the same whether
 * the catalog has one model or a hundred.
 *
 * Each lane's score is its clock: since when its jobs have waited without a release
 * (`holdFair` sets it when the lane starts holding jobs, `releaseFair` moves it to the time
 * of each release), or {@link NOTHING_HELD} when none of its jobs is ready to take. So the
 * first lanes are those that waited longest since they were last served, and a look reads
 * a few of them, not all.
 *
 * Only the `syncLane` script takes a lane out, and only when no job is left in it in any
 * state (see the script): a claim loop syncs the lanes it found with nothing ready, and the
 * cluster's stalled sweep syncs every lane once per interval, which also brings in a lane
 * that holds jobs some other way (jobs queued before this set existed, a retry no slot
 * with its model loaded saw).
 */
export class LaneIndex {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /** The lanes that hold jobs, longest waiting first; one read. */
  async withJobs(): Promise<LaneWithJobs[]> {
    const reply = await this.#redis.zrange(this.#keys.lanesWithJobs, 0, -1, "WITHSCORES");
    const lanes: LaneWithJobs[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) lanes.push({ lane: reply[i]!, waitingSince: Number(reply[i + 1]) });
    return lanes;
  }

  /**
   * Scores each lane by what it holds now, and takes out each that holds none, in one
   * round trip; resolves with the lanes that still hold jobs.
   */
  async sync(lanes: readonly string[], now = Date.now()): Promise<string[]> {
    if (lanes.length === 0) return [];
    const pipeline = commandPipeline(this.#redis);
    for (const lane of lanes) queueCommand(pipeline, "syncLane", this.#syncKeys(lane), [lane, now]);
    const replies = (await pipeline.exec()) ?? [];
    return lanes.filter((_, i) => {
      const [error, result] = replies[i] ?? [new Error("missing pipeline reply"), null];
      if (error) throw error;
      return Number(result) > 0;
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
