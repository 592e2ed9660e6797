import type { Redis } from "ioredis";
import { QueueKeys } from "bullmq";
import { FairQueue, LaneIndex, PRIORITY_BASE, summaryOf, type LaneWithJobs, type RedisKeys } from "@corral/shared";

/** What a lane holds right now, read from BullMQ's keys without claiming anything. */
export interface LaneSnapshot {
  lane: string;
  /**
   * Jobs ready to claim: held for fair claim + wait + prioritized + delayed ones that are
   * due. 0 when the lane is paused.
   */
  waiting: number;
  /** Of those, the jobs held for fair claim (released one at a time as slots take them). */
  held?: number;
  /** The job `getNextJob` would take, when any. */
  headJobId: string | null;
  /** BullMQ priority of the head job (0: none). */
  headPriority: number;
  /** When the head job was first added, ms since the epoch. */
  headTimestamp: number;
  /** Whether the head job is a due delayed job (a retry whose backoff ran out). */
  delayed?: boolean;
}

// BullMQ scores: prioritized = priority × 2^32 + counter; delayed = due time × 2^12 + counter.
// This encoding is BullMQ-internal, not API: that is why apps/worker and apps/scheduler pin
// `bullmq` to one exact version. Check these factors (BullMQ's Lua scripts) before bumping it.
const PRIORITY_FACTOR = 0x100000000;
const DELAY_FACTOR = 0x1000;

/**
 * Reads every lane's length and head job in two pipelined round trips. It reads BullMQ's
 * key layout (`QueueKeys`: `wait` is a list whose right end is next, `prioritized` and
 * `delayed` sorted sets, `meta.paused`), the same layout BullMQ's own Lua scripts use.
 * Delayed jobs (retries waiting out their backoff) count once due: `getNextJob` promotes
 * them, and nothing else would.
 */
export class LaneReader {
  readonly #redis: Redis;
  readonly #queueKeys: QueueKeys;
  readonly #fair: FairQueue;
  readonly #index: LaneIndex;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#queueKeys = new QueueKeys(keys.prefix);
    this.#fair = new FairQueue(redis, keys);
    this.#index = new LaneIndex(redis, keys);
  }

  /** The lanes that hold jobs, longest waiting first ({@link LaneIndex}): one read, whatever the size of the catalog. */
  withJobs(): Promise<LaneWithJobs[]> {
    return this.#index.withJobs();
  }

  /**
   * Takes the lanes that hold no job at all out of the lanes with jobs (a look found
   * nothing ready in them); one round trip.
   */
  async sync(lanes: readonly string[], now: number): Promise<void> {
    await this.#index.sync(lanes, now);
  }

  async read(lanes: readonly string[], now: number): Promise<LaneSnapshot[]> {
    if (lanes.length === 0) return [];
    const dueScore = (now + 1) * DELAY_FACTOR - 1;
    const pipeline = this.#redis.pipeline();
    for (const lane of lanes) {
      const key = (type: string) => this.#queueKeys.toKey(lane, type);
      pipeline.hexists(key("meta"), "paused");
      pipeline.llen(key("wait"));
      pipeline.lindex(key("wait"), -1);
      pipeline.zcard(key("prioritized"));
      pipeline.zrange(key("prioritized"), 0, 0, "WITHSCORES");
      pipeline.zcount(key("delayed"), 0, dueScore);
      pipeline.zrange(key("delayed"), 0, 0, "WITHSCORES");
      this.#fair.queueSummary(pipeline, lane);
    }
    const replies = (await pipeline.exec()) ?? [];
    const value = (index: number): unknown => {
      const [error, result] = replies[index] ?? [new Error("missing pipeline reply"), null];
      if (error) throw error;
      return result;
    };

    const snapshots: LaneSnapshot[] = [];
    const needTimestamp: { snapshot: LaneSnapshot; jobId: string }[] = [];
    lanes.forEach((lane, i) => {
      const at = i * 9;
      const paused = Number(value(at)) === 1;
      const waitLength = Number(value(at + 1));
      const waitHead = value(at + 2) as string | null;
      const prioritizedLength = Number(value(at + 3));
      const [prioritizedHead, prioritizedScore] = value(at + 4) as string[];
      const dueDelayed = Number(value(at + 5));
      const [delayedHead, delayedScore] = value(at + 6) as string[];
      const fair = summaryOf(lane, value(at + 7) as string[], Number(value(at + 8)));

      const snapshot: LaneSnapshot = {
        lane,
        waiting: paused ? 0 : fair.held + waitLength + prioritizedLength + dueDelayed,
        held: paused ? 0 : fair.held,
        headJobId: null,
        headPriority: 0,
        headTimestamp: now,
      };
      if (!paused) {
        if (waitLength > 0 && waitHead) {
          snapshot.headJobId = waitHead;
          needTimestamp.push({ snapshot, jobId: waitHead });
        } else if (prioritizedLength > 0 && prioritizedHead !== undefined) {
          snapshot.headJobId = prioritizedHead;
          snapshot.headPriority = Math.floor(Number(prioritizedScore) / PRIORITY_FACTOR);
          needTimestamp.push({ snapshot, jobId: prioritizedHead });
        } else if (dueDelayed > 0 && delayedHead !== undefined) {
          snapshot.headJobId = delayedHead;
          snapshot.headTimestamp = Math.floor(Number(delayedScore) / DELAY_FACTOR);
          snapshot.delayed = true;
          needTimestamp.push({ snapshot, jobId: delayedHead });
        } else if (fair.held > 0 && fair.band !== null) {
          // Held jobs: the first level of the earliest band waiting, since the lane last
          // started waiting or was last served, whichever is later (the starvation clock).
          snapshot.headPriority = Object.values(PRIORITY_BASE)[fair.band]! + 1;
          snapshot.headTimestamp = Math.max(fair.since ?? now, fair.served ?? 0);
        }
      }
      snapshots.push(snapshot);
    });

    if (needTimestamp.length > 0) {
      const jobs = this.#redis.pipeline();
      for (const { snapshot, jobId } of needTimestamp)
        jobs.hmget(this.#queueKeys.toKey(snapshot.lane, jobId), "timestamp", "priority");
      const fields = (await jobs.exec()) ?? [];
      needTimestamp.forEach(({ snapshot }, i) => {
        const [error, result] = fields[i] ?? [null, null];
        if (error || !Array.isArray(result)) return;
        const [timestamp, priority] = result as (string | null)[];
        if (timestamp) snapshot.headTimestamp = Number(timestamp);
        if (priority && snapshot.delayed) snapshot.headPriority = Number(priority);
      });
    }
    return snapshots;
  }
}
