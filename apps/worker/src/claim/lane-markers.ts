import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { QueueKeys } from "bullmq";
import { duplicateRedis, type RedisKeys } from "@corral/shared";

/**
 * Wakes an idle claim loop when a job is added to any of its lanes, instead of polling.
 * BullMQ adds a member to a lane's `marker` sorted set whenever a job becomes ready there
 * (added, retried, or another worker took one and more may wait), and its own workers
 * block on it with BZPOPMIN; this blocks on every lane's marker at once, on a dedicated
 * connection. Popping a marker only wakes the loop: it then reads the lanes and claims
 * as usual, so a marker taken by the wrong slot costs a look, never a job.
 */
export class LaneMarkers {
  readonly #redis: Redis;
  readonly #queueKeys: QueueKeys;
  readonly #log: Logger;
  #connection: Redis | null = null;
  #closed = false;

  constructor(options: { redis: Redis; keys: RedisKeys; logger: Logger }) {
    this.#redis = options.redis;
    this.#queueKeys = new QueueKeys(options.keys.prefix);
    this.#log = options.logger;
  }

  /**
   * Resolves with the lane whose marker was popped, or null after `timeoutMs` (or on error,
   * or once closed). Never rejects. One wait at a time: the connection runs one BZPOPMIN
   * (the claim loop keeps a wait that outlived its caller for the next one).
   */
  async wait(lanes: readonly string[], timeoutMs: number): Promise<string | null> {
    if (this.#closed || lanes.length === 0) return delay(timeoutMs, this.#closed);
    this.#connection ??= duplicateRedis(this.#redis, {
      connectionName: "corral:lane-markers",
      maxRetriesPerRequest: null,
    });
    const markers = lanes.map((lane) => this.#queueKeys.toKey(lane, "marker"));
    try {
      const popped = await this.#connection.bzpopmin(...markers, Math.max(0.01, timeoutMs / 1000));
      if (popped === null) return null;
      return lanes[markers.indexOf(popped[0])] ?? null;
    } catch (error) {
      if (!this.#closed) {
        this.#log.warn({ err: error }, "waiting on the lane markers failed; polling meanwhile");
        await delay(Math.min(timeoutMs, 100), false);
      }
      return null;
    }
  }

  /** Ends a wait in progress (it resolves null) and closes the connection. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#connection?.disconnect();
    this.#connection = null;
  }
}

function delay(ms: number, immediate: boolean): Promise<null> {
  if (immediate) return Promise.resolve(null);
  return new Promise((resolve) => setTimeout(() => resolve(null), ms).unref());
}
