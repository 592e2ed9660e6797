import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";

export interface ReplicaWaitOptions {
  /** The connection the acknowledged writes went out on (a Cluster typed as Redis included). */
  redis: Redis;
  /** A key under Corral's hash tag: on a Cluster, WAIT goes to the master of its slot. */
  slotKey: string;
  /** Replicas that must have a write before Corral acknowledges it. @defaultValue 0 (no WAIT) */
  replicas?: number;
  /** Longest WAIT, in ms. @defaultValue 1000 */
  timeoutMs?: number;
  logger: Logger;
}

/**
 * `WAIT numreplicas timeout` after a write Corral acknowledges (a job's 202, a created
 * batch), so that a failover right after the answer does not lose it. WAIT covers every
 * earlier write of the connection it runs on, so it runs on the scheduler's command
 * connection (for a Cluster, that connection's link to the master of `{corral}`'s slot).
 * When fewer replicas confirm within the timeout the write stands and is answered; a
 * warning says the answer went out unreplicated.
 */
export class ReplicaWait {
  readonly #redis: Redis;
  readonly #slotKey: string;
  readonly #replicas: number;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  #slot: Promise<number> | null = null;

  constructor(options: ReplicaWaitOptions) {
    this.#redis = options.redis;
    this.#slotKey = options.slotKey;
    this.#replicas = options.replicas ?? 0;
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#logger = options.logger;
    if (!Number.isInteger(this.#replicas) || this.#replicas < 0) throw new RangeError("replicas must be 0 or more");
  }

  /** Whether acknowledged writes wait for replicas at all. */
  get enabled(): boolean {
    return this.#replicas > 0;
  }

  /** Waits until `replicas` replicas have every write made so far (or the timeout); `what` names the write in a warning. */
  async confirm(what: string): Promise<void> {
    if (this.#replicas === 0) return;
    const node = await this.#node();
    const acknowledged = await node.wait(this.#replicas, this.#timeoutMs);
    if (acknowledged < this.#replicas) {
      this.#logger.warn(
        { what, replicas: acknowledged, wanted: this.#replicas, timeout_ms: this.#timeoutMs },
        "an acknowledged write reached fewer replicas than CORRAL_REDIS_WAIT_REPLICAS within the timeout",
      );
    }
  }

  /** The connection to run WAIT on: the client itself, or a Cluster's link to the slot's master. */
  async #node(): Promise<Redis> {
    if (!this.#redis.isCluster) return this.#redis;
    const cluster = this.#redis as unknown as Cluster;
    this.#slot ??= cluster.call("CLUSTER", "KEYSLOT", this.#slotKey).then(Number);
    const slot = await this.#slot.catch((error: unknown) => {
      this.#slot = null;
      throw error;
    });
    const owner = cluster.slots[slot]?.[0];
    const node = cluster.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === owner);
    if (!node) throw new Error(`no connection to the master of slot ${slot} (${owner ?? "unknown"})`);
    return node;
  }
}
