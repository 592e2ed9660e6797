import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { WorkerState, type RedisKeys } from "@corral/shared";

export interface HeartbeatOptions {
  redis: Redis;
  keys: RedisKeys;
  /** The slot id: `keys.worker(id)` and the member of `keys.workers`. */
  id: string;
  intervalMs: number;
  /** Builds the state to publish; called once per beat. */
  state: () => Promise<WorkerState>;
  logger: Logger;
}

/**
 * Every `intervalMs`, SETs `keys.worker(id)` to the slot's WorkerState JSON with a TTL of
 * three intervals and SADDs the id to `keys.workers`. A slot that dies simply stops
 * beating and its key expires. `stop()` deletes the key (and set member) at once.
 */
export class Heartbeat {
  readonly #o: HeartbeatOptions;
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;
  #stopped = false;

  constructor(options: HeartbeatOptions) {
    this.#o = options;
  }

  /** Writes the first beat, then keeps beating. */
  async start(): Promise<void> {
    await this.beat();
    if (this.#stopped) return;
    this.#timer = setInterval(() => {
      this.#beating ??= this.beat().finally(() => {
        this.#beating = null;
      });
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  /** One beat now. Errors are logged: a missed beat is not fatal. */
  async beat(): Promise<void> {
    const { redis, keys, id, intervalMs } = this.#o;
    try {
      const state = WorkerState.parse(await this.#o.state());
      if (this.#stopped) return;
      const ttlMs = intervalMs * 3;
      await redis.multi().set(keys.worker(id), JSON.stringify(state), "PX", ttlMs).sadd(keys.workers, id).exec();
    } catch (error) {
      this.#o.logger.warn({ err: error }, "heartbeat failed");
    }
  }

  /** Stops beating and removes the key. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#beating;
    const { redis, keys, id } = this.#o;
    try {
      await redis.multi().del(keys.worker(id)).srem(keys.workers, id).exec();
    } catch (error) {
      this.#o.logger.warn({ err: error }, "could not remove the heartbeat key");
    }
  }
}
