import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { commandPipeline, queueCommand, runCommand, type RedisKeys } from "@corral/shared";
import type { TenantPlaces } from "./lock-keeper.js";

/**
 * Per-tenant limits on running jobs (`max_active`, stamped on each job by the scheduler
 * from `CORRAL_TENANT_MAX_ACTIVE`). BullMQ has no per-group concurrency, so slots keep
 * the count themselves:
 *
 * - each running capped job holds a lease in the tenant's active set
 *   ({@link RedisKeys.tenantActive}), renewed with the job's lock, so a dead slot's
 *   entries expire on their own;
 * - a claimed job whose tenant is at its limit is **parked**: moved to BullMQ's delayed
 *   set (no attempt spent, its record stays `queued`) and listed in the tenant's parked
 *   list ({@link RedisKeys.tenantParked});
 * - a job that stops running frees its entry and promotes parked jobs, one per free place,
 *   back to their lane, where they are claimed like any job; a listed job that is gone
 *   (cancelled) or no longer delayed is replaced by the next one;
 * - each slot sweeps every few seconds for places freed by expired leases, and promotes
 *   as many parked jobs (see {@link TenantGate.sweep});
 * - a parked job that nobody promotes (a slot died between the pop and the promote)
 *   comes back by itself when its delay ends.
 *
 * Promotion does not reserve the place: another job of the tenant may take it first, and
 * the promoted one is parked again. The limit holds either way.
 */
export interface TenantGateOptions {
  /** Command connection (not owned). */
  redis: Redis;
  keys: RedisKeys;
  /** How long a running job's place is held without renewal (renewed with its lock). */
  leaseMs: number;
  /** How long a parked job waits at most before it is tried again unpromoted. @defaultValue 10 minutes */
  parkMs?: number;
  logger: Logger;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** A parked job, as listed: its lane and id. */
interface ParkedJob {
  lane: string;
  id: string;
}

/** Most entries one promotion looks at (stale ones are replaced by the next). */
const MAX_PROMOTE_TRIES = 100;

export class TenantGate implements TenantPlaces {
  readonly #o: Required<TenantGateOptions>;
  readonly #queues = new Map<string, Queue>();

  constructor(options: TenantGateOptions) {
    this.#o = { parkMs: 10 * 60 * 1000, now: Date.now, ...options };
  }

  /** Takes a place for the job among its tenant's `max` running jobs; false when they are all taken. */
  async enter(tenant: string, id: string, max: number): Promise<boolean> {
    const { redis, keys, leaseMs } = this.#o;
    const now = this.#o.now();
    const entered = await runCommand(redis, "enterTenant", [keys.tenantActive(tenant)], [now, max, id, now + leaseMs]);
    return entered === 1;
  }

  /** Extends the job's place (with its lock). */
  async renew(tenant: string, id: string): Promise<void> {
    await this.renewPlaces([{ tenant, id }]);
  }

  /** Extends every place given (the slot's lock keeper, with their locks): one `ZADD XX` per tenant, in one pipeline. */
  async renewPlaces(places: readonly { tenant: string; id: string }[]): Promise<void> {
    const { redis, keys } = this.#o;
    const expiry = this.#o.now() + this.#o.leaseMs;
    const byTenant = new Map<string, (string | number)[]>();
    for (const { tenant, id } of places) {
      let members = byTenant.get(tenant);
      if (!members) byTenant.set(tenant, (members = []));
      members.push(expiry, id);
    }
    if (byTenant.size === 0) return;
    const pipeline = redis.pipeline();
    for (const [tenant, members] of byTenant) pipeline.zadd(keys.tenantActive(tenant), "XX", ...members);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error !== null);
    if (failed) throw failed[0];
  }

  /** When a parked job (delayed now) is tried again unpromoted at the latest. */
  parkedUntil(): number {
    return this.#o.now() + this.#o.parkMs;
  }

  /**
   * Lists a job that was just moved to the delayed set for promotion when a place frees;
   * promotes it at once when one came free meanwhile.
   */
  async park(tenant: string, lane: string, id: string, max: number): Promise<void> {
    const { redis, keys } = this.#o;
    const free = await runCommand(
      redis,
      "parkJob",
      [keys.tenantActive(tenant), keys.tenantParked(tenant), keys.parkedTenants],
      [this.#o.now(), max, tenant, `${lane}\t${id}`],
    );
    if (free === 1) await this.#promote(tenant, [`${lane}\t${id}`]);
  }

  /** Frees the job's place and promotes parked jobs of its tenant into the free places. */
  async leave(tenant: string, id: string, max: number): Promise<void> {
    const { redis, keys } = this.#o;
    const popped = await runCommand(
      redis,
      "leaveTenant",
      [keys.tenantActive(tenant), keys.tenantParked(tenant)],
      [this.#o.now(), max, id],
    );
    await this.#promote(tenant, popped);
  }

  /**
   * Promotes parked jobs into places freed by expired leases (a slot that died).
   *
   * The tenants with parked jobs are read first (HGETALL of {@link RedisKeys.parkedTenants}),
   * then each one is swept by its own script (`sweepTenant-3.lua`, all in one pipeline), so
   * that every key a script touches is passed in KEYS (Redis Cluster). It stays correct
   * without one script over all tenants: each tenant's sweep is atomic over that tenant's
   * keys (drop expired places, pop as many parked jobs, forget the tenant when it has none
   * left, reading its limit then), and nothing is shared between tenants. A tenant parked
   * after the read is swept on the next tick, as one parked after the single script ran
   * was; a tenant forgotten after the read has no limit there and is skipped.
   */
  async sweep(): Promise<number> {
    const { redis, keys } = this.#o;
    const tenants = Object.keys(await redis.hgetall(keys.parkedTenants));
    if (tenants.length === 0) return 0;
    const now = this.#o.now();
    const pipeline = commandPipeline(redis);
    for (const tenant of tenants) {
      queueCommand(
        pipeline,
        "sweepTenant",
        [keys.tenantActive(tenant), keys.tenantParked(tenant), keys.parkedTenants],
        [now, tenant],
      );
    }
    const results = (await pipeline.exec()) ?? [];
    let promoted = 0;
    for (const [i, [error, popped]] of results.entries()) {
      if (error) throw error;
      for (const entry of popped as string[]) promoted += await this.#promote(tenants[i]!, [entry]);
    }
    return promoted;
  }

  async close(): Promise<void> {
    const queues = [...this.#queues.values()];
    this.#queues.clear();
    await Promise.allSettled(queues.map((q) => q.close()));
  }

  /**
   * Moves each popped job from the delayed set back to its lane. One that is gone
   * (cancelled) or no longer delayed (its delay ran out) is replaced by the tenant's next
   * parked job, so a stale entry does not waste a free place. Returns how many moved.
   */
  async #promote(tenant: string, entries: readonly string[]): Promise<number> {
    let promoted = 0;
    const pending = [...entries];
    for (let tries = 0; pending.length > 0 && tries < MAX_PROMOTE_TRIES; tries++) {
      const entry = pending.shift()!;
      if (await this.#promoteOne(entry)) {
        promoted++;
        continue;
      }
      const next = await this.#o.redis.lpop(this.#o.keys.tenantParked(tenant));
      if (next !== null) pending.push(next);
    }
    return promoted;
  }

  async #promoteOne(entry: string): Promise<boolean> {
    const parked = parseEntry(entry);
    if (!parked) return false;
    try {
      const job = await this.#queue(parked.lane).getJob(parked.id);
      if (!job || !(await job.isDelayed())) return false;
      await job.promote();
      return true;
    } catch (error) {
      // Promoted, claimed or removed by someone else meanwhile.
      this.#o.logger.debug({ err: error, job: parked.id }, "could not promote a parked job");
      return false;
    }
  }

  #queue(lane: string): Queue {
    let queue = this.#queues.get(lane);
    if (!queue) {
      queue = new Queue(lane, { connection: this.#o.redis, prefix: this.#o.keys.prefix });
      this.#queues.set(lane, queue);
    }
    return queue;
  }
}

function parseEntry(entry: string): ParkedJob | null {
  const tab = entry.indexOf("\t");
  return tab > 0 ? { lane: entry.slice(0, tab), id: entry.slice(tab + 1) } : null;
}
