import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { FairQueue, LANE_PREFIX, laneName, type JobPayload, type RedisKeys } from "@corral/shared";

export interface LaneQueuesOptions {
  /** Command connection, shared by every lane's Queue (the caller owns it). */
  connection: Redis;
  keys: RedisKeys;
  logger: Logger;
}

/** Job counts of one lane, as the metrics and the API report them. */
export interface LaneCounts {
  lane: string;
  /** The model id part of the lane name. */
  model: string;
  /**
   * Jobs waiting to run: held for fair claim (in BullMQ's delayed set until a slot releases
   * them), plus released ones in BullMQ's wait list (and prioritized, for jobs queued before
   * fair claim).
   */
  waiting: number;
  active: number;
  /** Delayed for a reason of their own: retries waiting out their backoff, jobs parked at `max_active`. */
  delayed: number;
  completed: number;
  failed: number;
}

/** The BullMQ producer side: one cached `Queue` per lane (model), all on one connection. */
export class LaneQueues {
  readonly #connection: Redis;
  readonly #keys: RedisKeys;
  readonly #fair: FairQueue;
  readonly #logger: Logger;
  readonly #queues = new Map<string, Queue<JobPayload>>();
  #closed = false;

  constructor(options: LaneQueuesOptions) {
    this.#connection = options.connection;
    this.#keys = options.keys;
    this.#fair = new FairQueue(options.connection, options.keys);
    this.#logger = options.logger;
  }

  /** The Queue for a lane name (`lane-<model>`), created on first use. */
  get(lane: string): Queue<JobPayload> {
    if (this.#closed) throw new Error("LaneQueues is closed");
    let queue = this.#queues.get(lane);
    if (!queue) {
      queue = new Queue<JobPayload>(lane, { connection: this.#connection, prefix: this.#keys.prefix });
      queue.on("error", (error) => this.#logger.warn({ err: error, lane }, "lane queue error"));
      this.#queues.set(lane, queue);
    }
    return queue;
  }

  /** The Queue of a model's lane. */
  forModel(modelId: string): Queue<JobPayload> {
    return this.get(laneName(modelId));
  }

  /** Every lane that has ever held jobs (the `lanes` set), sorted. */
  async known(): Promise<string[]> {
    const lanes = await this.#connection.smembers(this.#keys.lanes);
    return lanes.filter((lane) => lane.startsWith(LANE_PREFIX)).sort();
  }

  /** Counts of every known lane. */
  async counts(): Promise<LaneCounts[]> {
    const lanes = await this.known();
    // Every lane's held jobs in one pipelined round trip.
    const held = this.#fair.summaries(lanes);
    return Promise.all(
      lanes.map(async (lane, i) => {
        const [c, summaries] = await Promise.all([
          this.get(lane).getJobCounts("waiting", "prioritized", "active", "delayed", "completed", "failed"),
          held,
        ]);
        // Held jobs sit in BullMQ's delayed set; entries of cancelled ones count until a release drops them.
        const holding = Math.min(summaries[i]!.held, c.delayed ?? 0);
        return {
          lane,
          model: lane.slice(LANE_PREFIX.length),
          waiting: holding + (c.waiting ?? 0) + (c.prioritized ?? 0),
          active: c.active ?? 0,
          delayed: (c.delayed ?? 0) - holding,
          completed: c.completed ?? 0,
          failed: c.failed ?? 0,
        };
      }),
    );
  }

  /** Closes every Queue (not the shared connection). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const queues = [...this.#queues.values()];
    this.#queues.clear();
    for (const queue of queues) {
      try {
        await queue.close();
      } catch (error) {
        this.#logger.warn({ err: error, lane: queue.name }, "closing a lane queue failed");
      }
    }
  }
}
