import type { Redis } from "ioredis";

/**
 * Lets the commands a connection sends during one event-loop turn leave in one socket
 * write: {@link hold} corks the connection's socket, and it is uncorked at the turn's end
 * (`setImmediate`, after every pending promise continuation). A submit's admission script
 * and its BullMQ add (issued a few microtasks later), and the submits of requests that
 * arrived together, so cost one write system call instead of one each: on a loaded host
 * the write, not the bytes, is what costs. Order on the connection is unchanged.
 *
 * Unlike ioredis' `enableAutoPipelining` this builds no pipeline objects: the commands go
 * through the connection as usual and only their bytes wait.
 */
export class WriteBatcher {
  readonly #redis: Redis;
  #held: NodeJS.Immediate | null = null;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** Corks the socket until the end of this event-loop turn (once per turn). */
  hold(): void {
    // A Cluster (typed as Redis, see connectRedis) has no one socket: its writes go uncorked.
    if (this.#held !== null || this.#redis.status !== "ready" || this.#redis.isCluster) return;
    const socket = this.#redis.stream;
    socket.cork();
    this.#held = setImmediate(() => {
      this.#held = null;
      socket.uncork();
    });
  }
}
